"""The test process (T) of raylign's sandbox: runs a job's test code and is the only process whose word makes
a pass.

Loaded by :mod:`sandbox_harness` at its start and used in the processes it forks (standalone: no raylign
imports). T is forked by the job's supervisor (B) next to the solution process S, as a different uid
(65533; S is 65534) and not dumpable, so S can neither signal, trace nor read it; the two share nothing but
two pipes, over which values cross as plain data (:mod:`sandbox_wire`).

T builds each test's namespace from its own pristine interpreter: its own builtins and modules (a module the
solution imported is imported again here, so whatever the solution patched in its copy is not what the tests
use), the trusted set-up code (a HumanEval prompt: its helper functions run here, not the solution's
redefinitions), and proxies for the solution's names: a proxy call sends the arguments to S and gets the
result back as plain data, rebuilt here as builtin objects, so ``==`` in a test is the builtin comparison of
values, never a method of the solution's. What is not plain data comes back as a :class:`Remote` handle.

Result lines, written to a file only B reads: ``P i`` (test ``i`` returned), ``F i reason message``,
``E reason message`` (the solution itself raised), ``D`` (every test ran).
"""
import builtins
import os
import sys
import types
from collections import deque as _deque

try:
    import sandbox_pytest
    from sandbox_wire import Endpoint, Gone, RemoteException, Unsendable, WireError
except ImportError:  # imported as part of the raylign package
    from raylign.verifiers.code import sandbox_pytest
    from raylign.verifiers.code.sandbox_wire import Endpoint, Gone, RemoteException, Unsendable, WireError

PR_SET_DUMPABLE = 4
TESTER_UID = 65533
# the solution's exceptions that a test sees as themselves: every builtin Exception but those that steer
# iteration (a StopIteration out of the solution must not end a test's loop as if it were done)
_SAFE_EXC = {name: cls for name, cls in vars(builtins).items()
             if isinstance(cls, type) and issubclass(cls, Exception)
             and not issubclass(cls, (StopIteration, StopAsyncIteration))}


_MUTABLE = (list, dict, set, bytearray, _deque)  # arguments a function of the solution's may change in place
# S's requests on a mock of the tests' (and how many arguments each takes, the mock's index included)
_MOCK_REQUESTS = {"tget": 2, "titem": 2, "titer": 1, "tlen": 1, "tbool": 1, "tstr": 1, "tenter": 1, "texit": 1}
# a mock's names the solution may not reach: what would rewrite what the mock recorded or how it answers
_MOCK_KEPT = frozenset(("reset_mock", "configure_mock", "attach_mock", "mock_add_spec", "return_value",
                        "side_effect", "called", "call_count", "call_args", "call_args_list", "mock_calls",
                        "method_calls"))


def _is_mock(v):
    mock = sys.modules.get("unittest.mock")
    return mock is not None and isinstance(v, mock.NonCallableMock)


def test_classes(tests):
    """The ``ast.ClassDef`` nodes the test items define at their top level (items that do not parse: none)."""
    import ast
    for test in tests:
        try:
            body = ast.parse(test).body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        yield from (node for node in body if isinstance(node, ast.ClassDef))


def _class_sources(tests):
    """{name: source} of the classes the test items define at their top level: what S is given to rebuild an
    object of one of them that a test passes to the solution (a Cart with its methods, the tests' ListNode)."""
    import ast
    out = {}
    for node in test_classes(tests):
        try:
            out.setdefault(node.name, ast.unparse(node))
        except (ValueError, RecursionError):
            pass
    return out


def share_paths(temp_files):
    """Paths the tests make for the solution, which runs as another user: a directory T makes is writable by
    all with the sticky bit, like /tmp (S adds its files there, and cannot remove or rename T's, whose mode stays
    T's: read-only to S); with ``temp_files``, a file from ``tempfile`` (mkstemp, NamedTemporaryFile: mode 0600)
    is readable and writable by S, as the path a test hands the solution to write to is."""
    mkdir = os.mkdir

    def shared_mkdir(path, mode=0o777, *, dir_fd=None):
        mkdir(path, mode, dir_fd=dir_fd)
        if dir_fd is None:
            try:
                os.chmod(path, 0o1777)
            except (OSError, TypeError, ValueError):
                pass
    os.mkdir = shared_mkdir
    if temp_files:
        import tempfile
        inner = getattr(tempfile, "_mkstemp_inner", None)
        if inner is not None:
            def shared_inner(*args, **kwargs):
                fd, name = inner(*args, **kwargs)
                try:
                    os.fchmod(fd, 0o666)
                except OSError:
                    pass
                return fd, name
            tempfile._mkstemp_inner = shared_inner


class Refused(BaseException):
    """An answer of the solution's T does not take (plain data from an operation on the test's data): it fails the
    test's item, and no ``except Exception``, ``pytest.raises`` or ``assertRaises`` catches it."""


_NO_OPERAND = object()


def _builtin_copy(exc, bare=False):
    """A builtin exception for ``exc`` (its first builtin class, its args if it takes them; none when ``bare``):
    what a context manager of the solution's is told the block raised."""
    cls = next((c for c in type(exc).__mro__ if c.__module__ == "builtins" and issubclass(c, BaseException)),
               Exception)
    if bare:
        return cls() if issubclass(cls, Exception) else Exception()
    import pickle
    try:
        copy = cls(*exc.args)
        pickle.dumps(copy)  # (only what crosses as data)
        return copy
    except Exception:  # noqa: BLE001
        return cls(str(exc)) if cls is not BaseException else Exception(str(exc))


# modules whose exception classes steer tests or debuggers: never T's class for one the solution raised
_NOT_LIBRARY_EXC = frozenset(("builtins", "solution", "pytest", "_pytest", "unittest", "doctest", "bdb", "pdb",
                              "asyncio", "concurrent", "threading", "sandbox_pytest"))
_ONE_BY_ONE = 64  # an iterator's first items are fetched one per request, then in batches (1, 2, 4... 256)
_DRAIN_CAP = 4 << 20  # characters of the solution's prints T takes into a test's redirected streams, per job


class SolutionExit(Exception):
    """The solution raised SystemExit inside a call."""


class SolutionError(Exception):
    """An exception of the solution's own type (its name is the failure's reason)."""


def tester(spec, fds, ok_w, ns, rpc, s_pidfd):
    """T: set up (trusted), say so on fd 4, run the tests, write the result lines. Never returns.

    fds: 0 and 1 /dev/null, 2 T's stderr file, 3 the result file, 4 the set-up report, 5 writes to S,
    6 reads S's frames, 7 S's pidfd."""
    _exit = os._exit
    try:
        null = os.open("/dev/null", os.O_RDWR)
        src = [null, null, fds["err"], fds["res"], ok_w, rpc[1], rpc[0], s_pidfd]
        for n, fd in enumerate(src):
            os.dup2(fd, 1000 + n)
        for n in range(len(src)):
            os.dup2(1000 + n, n)
        os.closerange(len(src), 1 << 20)
    except BaseException:  # noqa: BLE001
        _exit(70)
    try:
        prepare_tester(spec, ns)
    except BaseException as exc:  # noqa: BLE001 - an infrastructure error, not a fail
        try:
            os.write(4, f"-{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4000])
        finally:
            _exit(70)
    os.write(4, b"+")
    os.close(4)
    try:
        run_tests(spec, 3, 6, 5, 7)
    except BaseException as exc:  # noqa: BLE001 - no D line: every test not yet passed fails
        try:
            os.write(2, f"tester: {type(exc).__name__}: {exc}\n".encode("utf-8", "replace"))
        finally:
            _exit(1)
    _exit(0)


def prepare_tester(spec, ns):
    import ctypes
    import resource
    import _signal
    libc = ctypes.CDLL(None, use_errno=True)
    os.chdir("/")
    for sig in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2):
        _signal.signal(sig, _signal.SIG_DFL)
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    if spec["nest_userns"]:  # not root on the host: shed the capabilities over the namespaces
        if libc.unshare(0x10000000) != 0:
            raise OSError(ctypes.get_errno(), "unshare(user) for the tester")
        for name, text in (("setgroups", "deny"), ("uid_map", "0 0 1"), ("gid_map", "0 0 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    if spec["sys_path"]:
        sys.path[:] = spec["sys_path"]
    uid = spec.get("tester_uid")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # after the uid change, which may reset it
    for which, value in ((resource.RLIMIT_CPU, spec["cpu"]), (resource.RLIMIT_AS, max(spec["mem"], 256 << 20)),
                         (resource.RLIMIT_FSIZE, 1 << 20), (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(which, (value, value))
    # the names the site module would have made builtins (T runs without it), so that no solution can define them
    builtins.exit = builtins.quit = sys.exit
    for name in ("help", "copyright", "credits", "license"):
        setattr(builtins, name, _no_site_name(name))
    os.environ["HOME"] = "/"  # not the job's /tmp, which the solution can write
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.argv = ["tests.py"]


_UNBOUND = object()
# packages of test helpers (the stdlib's own test suite holds objects equal to everything): never a module the
# solution may have bound under a name of its choosing
_TEST_PARTS = ("test", "tests", "idle_test")
# the harness's own modules (loaded in every job's processes under these names) and the program's __main__
_HARNESS = ("sandbox_wire", "sandbox_runner", "sandbox_tester", "sandbox_supervisor", "sandbox_harness", "__main__")
# top-level modules whose import does something (opens a browser, prints, starts a GUI)
_NO_IMPORT = ("antigravity", "this", "__hello__", "__phello__", "turtledemo", "idlelib", "tkinter", "turtle")
# the usual aliases: a test that uses one of these names means that module, whatever the solution bound to it
ALIASES = {"np": "numpy", "pd": "pandas", "sp": "scipy", "plt": "matplotlib.pyplot", "nx": "networkx",
           "tf": "tensorflow", "mp": "mpmath", "sym": "sympy", "it": "itertools", "ft": "functools",
           "op": "operator", "dt": "datetime", "st": "statistics"}


def module_named(name):
    """T's own copy of the top-level module called ``name``, or None when there is none (the harness's own
    modules and those whose import does something are none)."""
    import importlib
    import importlib.util
    if name in _HARNESS or name in _NO_IMPORT or name[:1] == "_":
        return None
    try:
        if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
            return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - not importable here
        pass
    return None


def module_at(path):
    """T's own module at the dotted ``path`` the solution named, reached by importing only its top-level module
    and following attributes (``os.path``): importing a submodule the solution chose would run code it chose
    (``unittest.__main__`` runs test discovery). None for a path with a private part, into the stdlib's test
    packages, or to anything but a module."""
    import types
    parts = path.split(".") if type(path) is str else []
    if not parts or not all(p.isidentifier() and p[:1] != "_" for p in parts) \
            or any(p in _TEST_PARTS or p.startswith("test_") for p in parts):
        return None
    value = module_named(parts[0])
    try:
        for part in parts[1:]:
            value = getattr(value, part)
    except Exception:  # noqa: BLE001
        return None
    return value if isinstance(value, types.ModuleType) else None


def binding(name, kind, payload, entry, remote, passed=False, base=True):
    """What a name of the solution's table means in the tests (``_UNBOUND``: nothing). The table is the
    solution's word, so it never picks an object of T's, nor a module for T to import: an entry point is the
    solution's own value (plain data, or a handle reached through S), never a module; a name that is a module's
    in T (``math``, ``numpy``) or a usual alias (``np``: ``ALIASES``) is T's own module, whatever the solution
    bound to it; a module under another alias is T's own module at the path the solution's module names
    (``module_at``); plain data is bound as it is; any other object of the solution's (a handle) is left out,
    since a test that used it through its attributes (``np.allclose`` on a class posing as numpy) would run the
    solution's code where it checks, unless the tests pass it as a value (``passed``: ``map(square, xs)``,
    ``key=keyf``, ``Calc.add(1, 2)``), where a handle is what it is in Python: the solution's function or class,
    whose ``==`` is identity, even under a module's name when the tests never read an attribute of it
    (``base``: ``filter(select, xs)``). ``remote``: T's handle class."""
    import importlib
    if kind not in ("value", "module"):
        return _UNBOUND
    if entry:
        return payload if kind == "value" else _UNBOUND
    if kind == "value" and type(payload) is not remote:
        return payload  # plain data, rebuilt here from builtin types
    if kind == "value" and passed and not base:
        return payload  # a function the tests only pass along (filter(select, xs)): its handle, even under a
        # module's name (np.allclose, an attribute's base, stays T's own module below)
    if name in ALIASES:
        try:
            return importlib.import_module(ALIASES[name])  # our own table: a module the tests mean
        except Exception:  # noqa: BLE001 - not installed here
            return _UNBOUND
    own = module_named(name)
    if own is not None:
        return own
    if kind == "module":
        found = module_at(payload)
        return _UNBOUND if found is None else found
    return payload if passed else _UNBOUND


def called_names(tests):
    """The names the tests call as functions (``f(...)``), but the builtins': functions under test, which are the
    solution's. A test that does not parse contributes none (it fails as it would anywhere)."""
    return test_names(tests)[0]


def test_names(tests):
    """``(called, under_test, loaded, bases, caught, owned)``, sorted lists of names the tests use:

    - ``called``: called as functions (``f(...)``), builtins' names aside: functions under test;
    - ``under_test``: when the tests reach no other name of the solution's, builtins' names called with arguments
      written out where a test checks their value (``assert sum([1, 2]) == 3``, ``r = max(1, 2)``; not
      ``== sorted([1, 3])``): the function under test named like a builtin
      (``sorted(f(x)) == sorted(y)``, ``len(r) == 3`` after ``r = f(3)`` and ``list(map(square, xs))`` use the
      builtin on the solution's values);
    - ``loaded``: read but never assigned, imported or defined in the test, builtins' and the called names aside:
      the solution's functions and classes passed as values (``map(square, xs)``, ``key=keyf``, ``Calc.add(1, 2)``);
    - ``bases``: read other than as a call's argument (``np.allclose``, ``checker = np``, ``Calc.add``);
    - ``caught``: exception classes the tests catch, expect or raise and do not define (``except InvalidInput:``,
      ``with pytest.raises(InvalidInput)``, ``assertRaises(InvalidInput, f, -1)``, ``raise InvalidInput(3)``): the
      solution's;
    - ``owned``: assigned, imported or defined by a test: never the solution's, in any test.

    A test that does not parse contributes none (it fails as it would anywhere)."""
    import ast
    loaded, bases, calls, caught, owned, heads, imported = set(), set(), [], set(), set(), set(), set()
    for test in tests:
        try:
            tree = ast.parse(test)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        own, read, arguments, expected = set(), set(), set(), []
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler):
                own.update([node.name] if node.name else [])  # except InvalidInput as e: e is the test's
                expected.extend([node.type] if node.type is not None else [])
            elif isinstance(node, ast.Raise) and node.exc is not None:  # raise InvalidInput("x"): a class too
                expected.append(node.exc.func if isinstance(node.exc, ast.Call) else node.exc)
            elif isinstance(node, ast.Call) and node.args and _expects_raise(node.func):
                expected.append(node.args[0])
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2 \
                    and node.func.id in ("isinstance", "issubclass"):  # isinstance(e, NotFound): maybe a class of
                expected.extend(node.args[1:] if node.func.id == "isinstance" else node.args)  # exceptions
            if isinstance(node, ast.Call):  # a name handed to a call as it is: filter(select, xs), key=keyf
                arguments.update(id(a) for a in [*node.args, *(k.value for k in node.keywords)]
                                 if isinstance(a, ast.Name))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                calls.append(node)
            elif isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else own).add(node.id)
                if isinstance(node.ctx, ast.Load) and id(node) not in arguments:
                    bases.add(node.id)  # read otherwise (np.allclose, checker = np): a module's name is T's module
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "solution":
                imported.add(node.attr)  # import solution; solution.add(2, 2)
            elif isinstance(node, ast.ImportFrom) and node.module == "solution":
                imported.update(a.asname or a.name for a in node.names if a.name != "*")  # the solution's own
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                own.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.arg):
                own.add(node.arg)
        loaded |= read - own
        owned |= own
        heads.update(id(c) for c in _checked_calls(tree))
        for node in expected:
            for item in node.elts if isinstance(node, ast.Tuple) else [node]:
                if isinstance(item, ast.Name) and item.id not in own and item.id not in builtins.__dict__:
                    caught.add(item.id)
    loaded -= owned  # a name another test assigns, imports or defines is never the solution's ("expected = 42")
    # (a name the tests define or import themselves is theirs: "from pytest import approx" then approx(...);
    # "from solution import f, InvalidInput" is the solution's)
    called = {c.func.id for c in calls if c.func.id not in owned} | imported
    solution = {n for n in called if n not in builtins.__dict__}
    passed = loaded - called - set(builtins.__dict__)
    under = set()
    if not solution and not passed:  # the tests reach no name of the solution's: the function under test is
        # named like a builtin, and it is the one whose value they check (never one building the expected side)
        under = {c.func.id for c in calls if id(c) in heads and c.func.id in builtins.__dict__
                 and all(_literal(arg) for arg in [*c.args, *(k.value for k in c.keywords)])}
    return sorted(solution), sorted(under), sorted(passed), sorted(bases), sorted(caught), sorted(owned)


def _checked_calls(tree):
    """The calls whose values a test checks: an assert's expression or the left side of its comparison
    (through ``not``, ``and``, ``or``), and the value an assignment binds (``r = max(1, 2)``)."""
    import ast
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            todo = [node.test]
            while todo:
                e = todo.pop()
                if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
                    todo.append(e.operand)
                elif isinstance(e, ast.BoolOp):
                    todo.extend(e.values)
                elif isinstance(e, ast.Compare):
                    todo.append(e.left)
                elif isinstance(e, ast.Call):
                    found.append(e)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call):
            found.append(node.value)
    return found


_RAISES = {"raises", "assertRaises", "assertRaisesRegex", "assertRaisesRegexp", "warns", "assertWarns",
           "assertWarnsRegex"}


def _expects_raise(func) -> bool:
    """Whether a call's function is one that expects its first argument's exception (``pytest.raises``,
    ``self.assertRaises``)."""
    import ast
    return (isinstance(func, ast.Attribute) and func.attr in _RAISES) or (
        isinstance(func, ast.Name) and func.id in _RAISES)


def _literal(node) -> bool:
    """Whether an argument is written out as plain data (``[1, 2, 3]``, ``-2.5``, ``'abc'``): the arguments of the
    function under test, never a value the tests computed (``len(r)`` after ``r = f(3)`` checks ``f``'s value with
    the builtin, which the solution's ``len`` must not replace)."""
    import ast
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def setup_variants(setup):
    """The forms of a task's set-up code to try, in order: as it is; with a ``pass`` after it (a prompt may end in
    a bare ``def f(...):`` line); everything before its last top-level ``def``/``class`` (a prompt that ends
    inside the function under test: its helpers come before it), with and without that ``pass``."""
    yield setup
    yield setup + "\n    pass\n"
    lines = setup.splitlines(keepends=True)
    last = max((i for i, line in enumerate(lines) if line.startswith(("def ", "class ", "async def "))),
               default=None)
    if last:
        head = "".join(lines[:last])
        yield head
        yield head + "\n    pass\n"


def run_collected(t, filename, cases_ran=False):
    """Run the tests a test item defines the way pytest and unittest would (a ``test...`` function, a
    ``unittest.TestCase`` of any name, a ``Test...`` class without ``__init__``, each defined in ``filename``;
    pytest's parametrize marks and fixtures through :mod:`sandbox_pytest`): the item passes only if each of them
    does; defining them is no pass. unittest.main() in the item has run its own."""
    unittest = sys.modules.get("unittest")
    ran, looked, classes, skipped = set(), set(), set(), []
    setup_module = t.get("setup_module")
    if isinstance(setup_module, types.FunctionType) and setup_module.__code__.co_filename == filename:
        setup_module(*([None] if setup_module.__code__.co_argcount else []))
    for name, value in list(t.items()):
        test_named = name.lower().startswith("test")
        own_class = isinstance(value, type) and _defined_in(value, filename)
        own_function = isinstance(value, types.FunctionType) and value.__code__.co_filename == filename \
            and not getattr(value, "_pytest_fixture", False)
        if own_class and test_named:
            classes.add(name)  # ("class testAdd": collected by nobody; the item fails when nothing else ran)
        if own_function and test_named:
            looked.add(name)  # (a test by its name: it must run, or the item fails: "def Test_add", "async def")
        case = unittest is not None and isinstance(value, type) and issubclass(value, unittest.TestCase)
        if case and own_class:  # (a TestCase of any name: "SolutionTests")
            if not cases_ran:
                with open(os.devnull, "w") as null:
                    _passed(unittest.TextTestRunner(stream=null, verbosity=0).run(
                        unittest.defaultTestLoader.loadTestsFromTestCase(value)), name)
            ran.add(name)
        elif name.startswith("test") and own_function \
                and not value.__code__.co_flags & 0x2a0:  # (no coroutine, generator or async generator)
            try:
                sandbox_pytest.run_test(value, t)
            except sandbox_pytest.Skipped as exc:  # (no pass: the item passes by the tests that ran)
                skipped.append(exc)
                continue
            ran.add(name)
        elif name.startswith("Test") and own_class \
                and "__init__" not in vars(value):  # (pytest collects no class with an __init__: a helper)
            for attr in sorted(vars(value)):
                method = vars(value)[attr]
                if attr.startswith("test") and isinstance(method, types.FunctionType):
                    instance = value()
                    _call_hook(instance, "setup_method", method)
                    try:
                        sandbox_pytest.run_test(method, t, bound=instance)
                    except sandbox_pytest.Skipped as exc:
                        skipped.append(exc)
                        continue
                    finally:
                        _call_hook(instance, "teardown_method", method)
                    ran.add(name)
    if not ran:  # (pytest ignores "def Test_helper" beside real tests; a file of only such runs nothing: fails)
        if skipped:
            raise skipped[0]  # every test skipped: none checked anything
        _not_run(looked | classes, ran)


def _not_run(looked, ran):
    left = sorted(looked - ran)
    if left:
        raise AssertionError(f"{left[0]} looks like a test and was not run (as pytest collects none such)")


def _call_hook(instance, name, method):
    """A test class's ``setup_method``/``teardown_method``, with the test method or without it, as it takes."""
    hook = getattr(instance, name, None)
    if callable(hook):
        code = getattr(getattr(hook, "__func__", hook), "__code__", None)
        hook(method) if code is not None and code.co_argcount >= 2 else hook()


def _unittest_main(*args, **kwargs):
    """T's ``unittest.main()``: runs the item's test cases, then exits as unittest does (``SystemExit(False)``)
    when they passed, and fails the item when one failed or none ran (Python 3.11 calls no test a success)."""
    import unittest
    kwargs.update(exit=False, argv=["test"])
    with open(os.devnull, "w") as null:
        kwargs.setdefault("testRunner", unittest.TextTestRunner(stream=null, verbosity=0))
        _passed(unittest.TestProgram(*args, **kwargs).result, "unittest")
    raise SystemExit(False)


def _passed(result, label):
    """Raise AssertionError with the first problem of a unittest result, or when it ran no test."""
    problems = result.failures + result.errors + result.unexpectedSuccesses
    if problems or not result.testsRun or len(result.skipped) + len(result.expectedFailures) >= result.testsRun:
        first = problems[0] if problems else None
        text = first[1] if isinstance(first, tuple) else "no test ran" if first is None else str(first)
        raise AssertionError(f"{label}: {' '.join(str(text).split())[-300:]}")


def _message_str(self) -> str:
    """``str()`` of T's stand-in for an exception of the solution's: the message the solution's own ``__str__``
    gave, when it came from S; else as Python would."""
    message = self.__dict__.get("_raylign_message")
    return message if isinstance(message, str) else Exception.__str__(self)


def _defined_in(cls, filename) -> bool:
    """Whether a class was defined by the test item ``filename`` (one of its functions was compiled there, under
    any decorators: ``@unittest.skipIf`` wraps it)."""
    for v in vars(cls).values():
        for _ in range(8):
            if getattr(getattr(v, "__code__", None), "co_filename", None) == filename:
                return True
            v = getattr(v, "__wrapped__", None)
            if v is None:
                break
    return False


def _stub(name, error, message):
    """A function called ``name`` that raises ``error(message)``."""
    def stub(*args, **kwargs):
        raise error(message)
    stub.__name__ = name
    return stub


def _undefined(name):
    return _stub(name, NameError, f"name {name!r} is not defined")


def _no_site_name(name):
    return _stub(name, RuntimeError, f"{name}() is not available in the test process")


def _clean(text, n=300):
    return " ".join(str(text).split())[:n]


def run_tests(spec, res_fd, from_s, to_s, s_pidfd):
    import pickle
    import select

    def emit(text):
        try:
            os.write(res_fd, text.encode("utf-8", "backslashreplace") + b"\n")
        except OSError:
            pass

    poller = select.poll()
    poller.register(from_s, select.POLLIN)
    poller.register(s_pidfd, select.POLLIN)

    def wait():
        """Block until S's pipe has data; Gone once S has exited and nothing is left to read (a child of S
        that keeps the pipe open does not keep the tests waiting)."""
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if from_s in ready:
                return
            if s_pidfd in ready:
                r = select.select([from_s], [], [], 0)[0]
                if r:
                    return
                raise Gone()

    remotes = {}
    buffers = {}  # per iterator of the solution's: the items read ahead of the test (one batch, doubling)
    caught_classes = {}  # T's own classes for the solution's exception classes the tests catch, by name
    raised_classes = {}  # (name, bases' names) -> T's class for the others, made when first raised
    caught_entries = []
    callbacks = []
    callback_ids = {}

    comparing = set()  # pairs of handles whose structural == is being decided (a cycle ends there)
    tainted = set()  # handles of objects S made from plain data of the test's (f(x) - 3.14): see Remote._op
    refused = []  # an operation refused in the current item (it fails the item, even if the test caught it)

    def _binary(name, reflected=False):
        def op(self, other):
            return self._op(name, other, reflected)
        op.__name__ = f"__{'r' if reflected else ''}{name}__"
        return op

    def _unary(name):
        def op(self):
            return self._op(name)
        op.__name__ = f"__{name}__"
        return op

    def refuse(what):
        exc = Refused(what)
        refused.append(exc)
        raise exc

    class Remote:
        """An object of the solution's that is not plain data. Its ``==`` is identity; it can be called,
        iterated, indexed, measured, tested for truth, printed and given to isinstance/issubclass as a class, each
        through S, each result plain data."""

        __slots__ = ("_h", "__weakref__")

        def __init__(self, h):
            object.__setattr__(self, "_h", h)

        def __call__(self, *args, **kwargs):
            if not any(isinstance(a, _MUTABLE) for a in (*args, *kwargs.values())):
                return request("call", self._h, args, kwargs)
            value, changed = checked(request("callm", self._h, args, kwargs), tuple)
            if type(value) not in (type(None), int, bool):  # an in-place function returns None or a count ("modify
                return value  # nums in-place, return k"); one that returns a collection, its answer, never changes
            for i, new in checked(changed, list):  # the test's objects (a.clear(); return [] passed assert
                # f(arr) == sorted(arr)); as plain data
                if type(i) is int and 0 <= i < len(args):
                    target = args[i]
                elif type(i) is str and i in kwargs:
                    target = kwargs[i]
                else:
                    raise WireError("bad in-place change")
                if type(new) is not type(target):
                    continue  # (what came back is not such a value: nothing is written)
                if isinstance(target, (list, bytearray)):
                    target[:] = new
                elif isinstance(target, dict):  # (item by item: a Counter's update would add)
                    target.clear()
                    for k, v in new.items():
                        target[k] = v
                elif isinstance(target, set):
                    target.clear()
                    target.update(new)
                else:  # a deque
                    target.clear()
                    target.extend(new)
            return value

        def __instancecheck__(self, inst):  # isinstance(x, Point), Point a class of the solution's
            return checked(request("isinstance", inst, self._h), bool)

        def __subclasscheck__(self, sub):
            return checked(request("issubclass", sub, self._h), bool)

        def __getattr__(self, name):
            if name[:2] == "__":
                raise AttributeError(name)
            return request("getattr", self._h, name)

        def __iter__(self):
            it = request("iter", self._h)
            if type(it) is not Remote:
                raise TypeError("the solution's iterator is not an iterator")
            # an iterator (a generator): itself, its items through one buffer for every reader (a second islice
            # goes on where the first stopped; iter(it) is it); a container's: its fresh iterator's
            return self if it is self else _Items(it)

        def __next__(self):
            # [items read ahead, next batch size, exhausted, requests made when it last fetched, its fetches since]
            buf = buffers.setdefault(self._h, [[], 1, False, -1, 0])
            if not buf[0]:
                if buf[2]:
                    raise StopIteration
                if calls[0] != buf[3] or told[0] != (False, False):
                    buf[1], buf[4] = 1, 0  # the test looked at S since (or captures its prints): no read-ahead,
                    # so the items' side effects happen when the test takes each ("log == [0]" after next(g))
                items, done = checked(request("next", self._h, buf[1]), tuple)
                buf[0].extend(reversed(checked(items, list)))
                buf[3], buf[4], buf[2] = calls[0], buf[4] + 1, bool(done)
                if buf[4] >= _ONE_BY_ONE:  # a long uninterrupted read (sum(g), list(g)): growing batches
                    buf[1] = min(2 * buf[1], 256)
                if not buf[0]:
                    raise StopIteration
            return buf[0].pop()

        def __len__(self):
            n = checked(request("len", self._h), int)
            if n < 0:
                raise ValueError("__len__() should return >= 0")
            return n

        def __bool__(self):
            if self._h in tainted:  # (assert not (f(x) - 3.14))
                refuse("the truth of the solution's object made from the test's data")
            return checked(request("bool", self._h), bool)

        def __getitem__(self, key):
            return request("getitem", self._h, key)

        def __str__(self):
            return checked(request("str", self._h), str)

        def __repr__(self):
            try:
                return checked(request("repr", self._h), str)
            except Exception:  # noqa: BLE001
                return f"<solution object {self._h}>"

        def __setattr__(self, name, value):  # (the test's value: S's own class decides, as in Python)
            request("setattr", self._h, name, value)

        def __delattr__(self, name):
            request("delattr", self._h, name)

        def __setitem__(self, key, value):
            request("setitem", self._h, key, value)

        def __delitem__(self, key):
            request("delitem", self._h, key)

        def __enter__(self):
            return request("enter", self._h)

        def __exit__(self, exc_type, exc, tb):
            """The solution's context manager's exit; it may swallow the block's exception, but never a test's
            failing assert (nor anything that is not an ``Exception``)."""
            ours = exc is not None and getattr(exc, "_raylign_from_solution", False)
            told = None if exc is None else _builtin_copy(exc) if ours else _builtin_copy(exc, bare=True)
            swallow = request("exit", self._h, told)
            return type(swallow) is bool and swallow and isinstance(exc, Exception) and \
                not isinstance(exc, AssertionError) and (ours or type(exc).__module__ == "builtins")  # (what the
            # solution raised, or a builtin error of the test's own block; never a failing assert, nor what a
            # test's own exception says: only its class reaches the solution)

        def __eq__(self, other):
            """A solution object equals only itself, or another of its objects of the same class whose
            attributes are equal as plain data (a dataclass's ==, decided here: never the solution's __eq__,
            so an object equal to everything equals nothing)."""
            if other is self:
                return True
            if type(other) is not Remote:
                return NotImplemented
            pair = (self._h, other._h)
            if pair in comparing:  # a cycle (self.me = self): equal unless something else differs
                return True
            mine, theirs = self._fields(), other._fields()
            if not mine[2]:  # a class without __eq__: identity, as in Python (mine[2]: its class has one)
                return False
            comparing.add(pair)
            try:
                return mine[0] is theirs[0] and bool(mine[1]) and mine[1] == theirs[1]
            finally:
                comparing.discard(pair)

        def __ne__(self, other):
            same = self.__eq__(other)
            return same if same is NotImplemented else not same

        def __hash__(self):  # objects equal by their attributes (above) hash alike: by their class
            cls, _, has_eq, hashable = self._fields()
            if not hashable:
                raise TypeError(f"unhashable type: '{cls}'")
            return hash(("solution class", cls._h)) if has_eq and type(cls) is Remote else object.__hash__(self)

        def _fields(self):
            got = checked(request("fields", self._h), tuple)
            if len(got) != 4 or type(got[1]) is not dict or type(got[2]) is not bool or type(got[3]) is not bool:
                raise WireError("bad fields")
            return got

        def __contains__(self, item):
            """``x in obj``: the solution's ``__contains__`` where its class has one (its custom container),
            else the items it iterates compared here (never with the solution's ``==``)."""
            got = request("contains", self._h, item)
            if got is None:
                return any(x is item or x == item for x in self)
            return checked(got, bool)

        def _op(self, name, other=_NO_OPERAND, reflected=False):
            """``a < b``, ``v * 3``, ``-v``, ``abs(v)``... on objects of the solution's, computed by S (``sorted``
            of its objects, its Version's ``<``, its Vector's ``*``); an exception S raises is the test's to catch
            (``Money(5) + 3`` raising TypeError). Plain data S answers is taken only where the solution could as
            well have returned it: never for an operation with the test's plain data or with an object made from
            it, so an object "within everything" passes no ``abs(f(x) - 3.14) < 1e-6`` (its ``-`` gave 0) nor
            ``0.99 < f(x) < 1.01``: such an answer fails the test's item (:class:`Refused`)."""
            operands = (self,) if other is _NO_OPERAND else (other, self) if reflected else (self, other)
            plain = any(type(o) is not Remote for o in operands)
            taint = plain or any(type(o) is Remote and o._h in tainted for o in operands)
            value = request("op", name, *operands)
            if type(value) is Remote:
                if taint:
                    tainted.add(value._h)
                return value
            if value is NotImplemented:
                return NotImplemented
            if taint:
                refuse(f"the solution's {name} of its object and the test's data gave plain data")
            return value

        __lt__, __le__, __gt__, __ge__ = (_binary(n) for n in ("lt", "le", "gt", "ge"))
        __add__, __sub__, __mul__, __matmul__ = (_binary(n) for n in ("add", "sub", "mul", "matmul"))
        __truediv__, __floordiv__, __mod__, __pow__ = (_binary(n) for n in ("truediv", "floordiv", "mod", "pow"))
        __radd__, __rsub__, __rmul__, __rmatmul__ = (_binary(n, True) for n in ("add", "sub", "mul", "matmul"))
        __rtruediv__, __rfloordiv__, __rmod__ = (_binary(n, True) for n in ("truediv", "floordiv", "mod"))
        __iadd__, __isub__, __imul__ = (_binary(n) for n in ("iadd", "isub", "imul"))
        __neg__, __pos__, __abs__, __invert__ = (_unary(n) for n in ("neg", "pos", "abs", "invert"))

        def __reduce__(self):
            raise TypeError("a solution object cannot be pickled")

        def __copy__(self):
            return self

        def __deepcopy__(self, memo):
            return self

    class _Items:
        """T's iterator over an iterator of the solution's, one item per ``next``."""

        __slots__ = ("remote",)

        def __init__(self, remote):
            self.remote = remote

        def __iter__(self):
            return self

        def __next__(self):
            return self.remote.__next__()

    def checked(value, typ):
        if type(value) is not typ:
            raise WireError(f"expected a {typ.__name__} from the solution, got {type(value).__name__}")
        return value

    class_sources = []  # [{name: source}] of the tests' classes, read when an object of one is first sent

    class Pickler(pickle.Pickler):
        """Notes the tests' own classes among what it pickles (their source goes with it: S has no such class)."""

        def reducer_override(self, obj):
            cls = obj if isinstance(obj, type) else type(obj)
            if cls.__module__ == "__main__":
                if not class_sources:
                    class_sources.append(_class_sources(spec.get("tests") or ()))
                if cls.__qualname__ in class_sources[0]:
                    self.classes.add(cls.__qualname__)
            return NotImplemented

    def dumps(v):
        import io
        buf = io.BytesIO()
        p = Pickler(buf, protocol=5)
        p.classes = set()
        p.dump(v)
        return buf.getvalue(), [class_sources[0][n] for n in sorted(p.classes)]

    def enc_other(v):
        if type(v) is Remote:
            return b"H", v._h
        if _is_mock(v):  # a mock of the tests': S gets a stand-in whose every use comes back here (serve)
            k = id(v)
            if k not in callback_ids:
                callback_ids[k] = len(callbacks)
                callbacks.append(v)
            return b"R", callback_ids[k]
        if isinstance(v, type) or not callable(v):
            try:
                limit = sys.getrecursionlimit()
                sys.setrecursionlimit(max(limit, 20_000))  # (a linked list of thousands of the tests' nodes)
                try:
                    data, sources = dumps(v)
                    return b"P", (data, sources) if sources else data
                finally:
                    sys.setrecursionlimit(limit)
            except Exception as exc:  # noqa: BLE001
                raise Unsendable(f"a {type(v).__name__} cannot be sent to the solution: {exc}") from None
        k = id(v)
        if k not in callback_ids:
            callback_ids[k] = len(callbacks)
            callbacks.append(v)
        return b"C", callback_ids[k]

    def dec_other(tag, payload):
        if tag == b"H":
            if type(payload) is not int or payload < 0:
                raise WireError("bad handle")
            if payload not in remotes:
                remotes[payload] = Remote(payload)
            return remotes[payload]
        if tag == b"C":
            if type(payload) is not int or not 0 <= payload < len(callbacks):
                raise WireError("bad callback")
            return callbacks[payload]
        raise WireError(f"unexpected tag {tag!r} from the solution")

    def serve(kind, args):
        """S's requests while T waits: calls of the tests' callables, and what the solution does with a mock of
        the tests' (its attributes, items, iteration, length, truth, text, ``with``; nothing that would change
        what the mock recorded: no attribute set, no ``reset_mock``, no private name)."""
        if not args or type(args[0]) is not int or not 0 <= args[0] < len(callbacks):
            raise WireError(f"unexpected request {kind!r} from the solution")
        target = callbacks[args[0]]
        if kind == "cb" and len(args) == 3 and type(args[1]) is tuple and type(args[2]) is dict:
            return target(*args[1], **args[2])
        if not _is_mock(target) or kind not in _MOCK_REQUESTS or len(args) != _MOCK_REQUESTS[kind]:
            raise WireError(f"unexpected request {kind!r} from the solution")
        if kind == "tget":
            if type(args[1]) is not str or args[1][:1] == "_" or args[1] in _MOCK_KEPT:
                raise AttributeError(f"the test's mock has no attribute {args[1]!r} for the solution")
            return getattr(target, args[1])
        if kind == "titem":
            return target[args[1]]
        if kind == "titer":
            import itertools
            return list(itertools.islice(iter(target), 100_000))
        return {"tlen": len, "tbool": bool, "tstr": str, "tenter": lambda m: m.__enter__(),
                "texit": lambda m: m.__exit__(None, None, None)}[kind](target)

    endpoint = Endpoint(from_s, to_s, serve, enc_other, dec_other, wait)

    broken = []  # the conversation with S failed: the test fails even if its code swallowed the error

    t_streams = sys.stdout, sys.stderr
    told = [(False, False)]  # which of T's streams S was last told are redirected
    calls = [0]  # requests made to S (an iterator reads ahead only while the test makes no other)
    drained = [0]  # characters of the solution's output written into them (at most _DRAIN_CAP in a job)

    def drain():
        """Write what the solution printed during a call into T's redirected streams."""
        got = endpoint.request("readcap")
        if type(got) is tuple and len(got) == 2:
            for text, on, stream in ((got[0], told[0][0], sys.stdout), (got[1], told[0][1], sys.stderr)):
                if on and type(text) is str and text and drained[0] < _DRAIN_CAP:
                    text = text[:_DRAIN_CAP - drained[0]]
                    drained[0] += len(text)
                    stream.write(text)

    def request(kind, *args):
        """A request to S; while the test has redirected its stdout or stderr, what the solution prints during
        it goes there too (capsys, ``redirect_stdout``, ``sys.stdout = io.StringIO()``)."""
        if broken:
            raise broken[0]
        calls[0] += 1
        try:
            redirected = (sys.stdout is not t_streams[0], sys.stderr is not t_streams[1])
            if redirected != told[0]:
                endpoint.request("capture", *redirected)
                told[0] = redirected
            if redirected == (False, False):
                return endpoint.request(kind, *args)
            try:
                return endpoint.request(kind, *args)
            finally:
                drain()
        except RemoteException as exc:
            err = as_exception(exc.name, exc.message, exc.chain, exc.exc_args, exc.attrs)
            if exc.cause is not None:  # (raise ValueError(...) from KeyError(...): e.__cause__ is a KeyError)
                names = exc.cause[0].split()
                err.__cause__ = as_exception(names[0] if names else "Exception", exc.cause[1], tuple(names))
            raise err from err.__cause__
        except (Gone, WireError) as exc:
            broken.append(exc)
            raise

    def as_exception(name, message, chain=(), args=None, attrs=None):
        """T's exception for one the solution raised: a builtin one as itself; one of the solution's classes as
        a class of T's under its name, which is also each class of its bases the tests catch (``caught``: T's
        own classes by those names) and the builtin exception it derives from (``class InvalidInput(ValueError)``
        is caught by ``except ValueError``). Only names cross: no object of the solution's."""
        if name == "SystemExit":
            return SolutionExit(message)
        cls = _SAFE_EXC.get(name)
        if cls is None:
            safe = "".join(c for c in name if c.isalnum() or c == "_")[:40] or "SolutionError"
            cls = caught_classes.get(safe)
            if cls is None:  # one class per name and bases: the same exception raised twice is of one type
                key = (safe, tuple(n for n in chain[1:16] if type(n) is str))
                cls = raised_classes.get(key)
                if cls is None:
                    cls = raised_classes[key] = exception_class(*key)
        try:
            exc = cls(*args) if args is not None else cls(message)
        except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError wants 5 arguments
            try:
                exc = cls(message)
            except Exception:  # noqa: BLE001
                exc = type(cls.__name__, (SolutionError,), {})(message)
        try:
            exc._raylign_from_solution = True
            exc._raylign_message = message  # (str(e) as the solution's __str__ said it: "need 50 more")
        except Exception:  # noqa: BLE001
            pass
        for key, value in (attrs or {}).items():
            if type(key) is str and key.isidentifier() and key[:1] != "_":
                try:
                    setattr(exc, key, value)
                except Exception:  # noqa: BLE001
                    pass
        return exc

    def exception_class(name, bases_names):
        """T's class for an exception class of the solution's called ``name`` whose bases are called
        ``bases_names`` (its method resolution order): a subclass of each of those the tests catch
        (``caught_classes``) and of the first builtin one (``class InvalidInput(ValueError)`` is a ValueError);
        or a library's class of that name and those bases that T has loaded (``dataclasses.FrozenInstanceError``,
        ``json.JSONDecodeError``: the test catches T's)."""
        library = library_exception(name, bases_names)
        if library is not None:
            return library
        own = tuple(dict.fromkeys(caught_classes[n] for n in bases_names if n in caught_classes))
        builtin = next((_SAFE_EXC[n] for n in bases_names if n in _SAFE_EXC and n != "Exception"), None)
        if builtin is not None and not any(issubclass(o, builtin) for o in own):
            own += (builtin,)
        if not any(issubclass(o, SolutionError) for o in own):
            own += (SolutionError,)
        try:
            return type(name, own, {"__str__": _message_str})
        except TypeError:  # bases whose layouts conflict
            return type(name, own[:1], {"__str__": _message_str})

    def library_exception(name, bases_names):
        want = [name, *bases_names]
        for module_name, module in list(sys.modules.items()):
            if module is None or module_name in _HARNESS or module_name.startswith("sandbox_") or name[:1] == "_" \
                    or module_name.split(".")[0] in _NOT_LIBRARY_EXC:  # (never a test framework's control flow:
                # unittest's SkipTest and _ShouldStop would skip a test or count it passed)
                continue
            cls = getattr(module, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException) and cls.__module__ == module_name \
                    and [c.__name__ for c in cls.__mro__][:len(want)] == want:
                return cls
        return None

    def reason(exc):
        if isinstance(exc, AssertionError):
            return "assertion"
        if isinstance(exc, Gone):
            return "gone"
        if isinstance(exc, WireError):
            return "protocol"
        if isinstance(exc, Refused):
            return "refused"
        if isinstance(exc, SolutionExit):
            return "exit"
        if isinstance(exc, MemoryError):
            return "memory"
        return type(exc).__name__

    def message(exc):
        try:
            return _clean(exc)
        except Exception:  # noqa: BLE001
            return "?"

    tests = list(spec["tests"])
    try:
        hello = endpoint.recv()
    except (Gone, WireError) as exc:
        for i in range(len(tests)):
            emit(f"F {i} {reason(exc)} {message(exc)}")
        emit("D")
        return
    if hello[0] == "error" and len(hello) == 4:
        emit(f"E {_clean(hello[2], 40)} {_clean(hello[3])}")
        emit("D")
        return
    if hello[0] != "hello" or len(hello) != 3 or type(hello[2]) is not list:
        for i in range(len(tests)):
            emit(f"F {i} protocol the solution process did not start the conversation")
        emit("D")
        return
    base = {"__name__": "__main__", "__builtins__": builtins}
    from_solution = {}
    called, under_test, loaded, bases, caught, owned = test_names(spec["tests"])
    entry_points = set(spec.get("entry_points") or ()) | set(called) | set(under_test)
    loaded, bases = set(loaded), set(bases)
    for entry in hello[2]:
        if type(entry) is not tuple or len(entry) != 3 or type(entry[0]) is not str or not entry[0].isidentifier():
            continue
        name, kind, payload = entry
        if name[:2] == "__" or (name in builtins.__dict__ and name not in entry_points):
            continue  # never shadow a builtin the tests use (but the function under test may be called "max")
        if name in owned and name not in entry_points:
            continue  # the tests' own name ("expected = 42" in one test, read in another)
        if name in caught and kind == "value" and type(payload) is Remote:
            caught_entries.append((name, payload))  # (T's own class for it: below, once every name is read)
            continue
        value = binding(name, kind, payload, name in entry_points, Remote, name in loaded, name in bases)
        if value is not _UNBOUND:
            base[name] = value
            from_solution[name] = value
    sandbox_pytest.install(request)  # "import pytest": raises, approx, parametrize, fixtures, with no pytest installed
    if any("unittest" in test for test in tests):
        import unittest
        unittest.main = _unittest_main
        if "assertLogs" in "".join(tests) or "assertNoLogs" in "".join(tests):
            sandbox_pytest.forward_assert_logs()
    share_paths(any("tempfile" in test for test in tests))
    if any("random" in test for test in tests):
        sandbox_pytest.forward_random_seed()
    if any("mock" in test for test in tests):
        sandbox_pytest.forward_mock_patches()  # patch("builtins.input", ...) reaches the solution's input()
    # ``except InvalidInput:``: T's own class by that name, which the solution's exceptions of that class (or of a
    # subclass) become (as_exception), with the bases the solution gave its class, as S names them (its method
    # resolution order: bases first); an alias of a builtin exception (InvalidInput = ValueError) is that builtin.
    # The solution's class itself never reaches T
    chains = []
    remotes_by_name = dict(caught_entries)
    for name, payload in caught_entries:
        try:
            chain = request("mro", payload._h)
        except Exception:  # noqa: BLE001
            chain = []
        chain = [n for n in chain if type(n) is str][:16] if type(chain) is list else []
        chains.append((len(chain), name, chain))
    for _, name, chain in sorted(chains):
        if chain and chain[0] in _SAFE_EXC and chain[0] != name and not issubclass(AssertionError, _SAFE_EXC[chain[0]]):
            cls = _SAFE_EXC[chain[0]]  # (never AssertionError or Exception: a test's own failing assert
            # inside "except InvalidInput:" would be caught)
        elif chain and "BaseException" not in chain:
            base[name] = from_solution[name] = remotes_by_name[name]  # isinstance(x, Point): no exception class
            continue
        else:
            cls = exception_class(name, chain[1:])
        base[name] = from_solution[name] = caught_classes[name] = cls
    solution_module = types.ModuleType("solution")  # "from solution import f" (pytest-style rows): the names the
    for name, value in from_solution.items():  # names the solution's table gave and the rules bound: never one the
        setattr(solution_module, name, value)  # tests own ("from solution import *" after "from pytest import
        # approx" must not bring the solution's approx), nor a builtin's but the function under test
    sys.modules["solution"] = solution_module
    setup = spec.get("setup")
    setup_error = None
    if setup:
        code = None
        for text in setup_variants(setup):
            try:
                code = compile(text, "setup.py", "exec")
                break
            except (SyntaxError, ValueError):
                continue
        try:  # a set-up that compiles in no form fails every test: the solution's names never stand in for it
            if code is None:
                raise SyntaxError("the task's set-up code does not compile")
            exec(code, base)
        except BaseException as exc:  # noqa: BLE001 - the task's own code: every test fails with it
            setup_error = exc
    for name in spec.get("entry_points") or ():
        if name in from_solution:
            base[name] = from_solution[name]
        elif name in builtins.__dict__:
            base[name] = _undefined(name)  # a solution without it never gets the builtin's answers (fn_name "max")
        else:
            base.pop(name, None)
    for i, test in enumerate(tests):
        if setup_error is not None:
            emit(f"F {i} {reason(setup_error)} the task's set-up code raised: {message(setup_error)}")
            continue
        if broken:
            emit(f"F {i} {reason(broken[0])} {message(broken[0])}")
            continue
        refused.clear()
        module = types.ModuleType("__main__")  # the test's globals, as the module unittest.main() reads
        t = module.__dict__
        t.update(base)
        sys.modules["__main__"] = module
        try:
            t["__file__"] = f"test_{i}.py"
            try:
                exec(compile(test, f"test_{i}.py", "exec"), t)
            except SystemExit as exc:
                if exc.code not in (0, False, None) or "unittest" not in sys.modules:
                    raise  # (a test that exits is no pass, but for unittest.main()'s word that its tests passed)
                run_collected(t, f"test_{i}.py", cases_ran=True)  # (the pytest-style tests beside them)
            else:
                run_collected(t, f"test_{i}.py")
        except BaseException as exc:  # noqa: BLE001
            first = (broken or refused or [exc])[0]
            emit(f"F {i} {reason(first)} {message(first)}")
            continue
        if broken or refused:  # (caught by the test's own code: still no pass)
            emit(f"F {i} {reason((broken or refused)[0])} {message((broken or refused)[0])}")
            continue
        emit(f"P {i}")
    emit("D")
