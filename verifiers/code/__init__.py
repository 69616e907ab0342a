"""The ``code`` verifier and the sandbox it runs programs in:

    verifier.py            CodeVerifier and its registration (the ``code`` entry point): task formats, judging
    sandbox.py             the sandbox API and backends (``namespaces``, ``rlimits``; the ``sandboxes`` entry point)
    sandbox_host.py        the host's side of the transport: job servers and the frame pipe
    sandbox_harness.py     the trusted job server, a standalone script (``python -I -S -B``, never imports raylign)
    sandbox_supervisor.py  PID 1 of a job: the minimal root, the runs (loaded by the harness from this directory)
    sandbox_runner.py      S, the process that runs the untrusted code (loaded by the harness from this directory)
    sandbox_tester.py      T, the process that runs the tests and alone reports passes (likewise)
    sandbox_wire.py        plain data between T and S (likewise)

The ``sandbox_harness/supervisor/runner/tester/wire`` files import each other by bare name from this
directory (the harness puts it on ``sys.path`` while it starts), so they keep their file names and stay side
by side.
"""
from raylign.verifiers.code.verifier import CodeVerifier, extract_code, normalize_output, parse_task

__all__ = ["CodeVerifier", "extract_code", "normalize_output", "parse_task"]
