"""The cluster a run would see, and whether a set of actor bundles fits on it (``raylign plan`` and ``doctor``).

Two views: a described local Ray (what :func:`raylign.engine.cluster.init_ray` would start from ``[ray]``:
``num_cpus`` logical CPUs, ``num_gpus`` or the GPUs found here), found without starting Ray; and a running
cluster, read through a short driver connection (``ray.nodes()``, free resources per node), closed at once.
GPUs are found without torch: ``CUDA_VISIBLE_DEVICES``, then ``nvidia-smi``, then ``/proc/driver/nvidia/gpus``.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from raylign.engine.errors import RaylignError

# Resources Ray adds to every node that no actor of raylign asks for: not listed as "custom" in messages.
_BUILTIN = {"CPU", "GPU", "memory", "object_store_memory"}


class ClusterUnreachable(RaylignError):
    """The Ray cluster at an address does not answer; ``what`` says so, ``fix`` what to do (both in the message)."""

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(f"{what}: {fix}" if fix else what)
        self.what, self.fix = what, fix


@dataclass(frozen=True)
class Gpu:
    name: str  # e.g. "NVIDIA H200"
    memory_gb: float  # total memory, GiB


@dataclass(frozen=True)
class Node:
    name: str  # "local", or the node's IP and short id
    resources: Mapping[str, float]  # totals as Ray schedules them: CPU, GPU, custom resources
    available: Mapping[str, float] | None = None  # free now (None: a described node)
    memory_gb: float | None = None  # RAM
    gpus: tuple[Gpu, ...] = ()  # known only for the local machine

    @property
    def custom(self) -> dict[str, float]:
        return {k: v for k, v in self.resources.items()
                if k not in _BUILTIN and not k.startswith("node:") and not k.startswith("accelerator_type")}


@dataclass(frozen=True)
class ClusterView:
    source: str  # how the view was made, for the reader
    nodes: tuple[Node, ...]
    address: str = ""  # the cluster's address ("" = a described local Ray)
    ray_version: str = ""

    def total(self, key: str) -> float:
        return sum(n.resources.get(key, 0.0) for n in self.nodes)


# ---------------------------------------------------------------------------------------------- this machine


def local_gpus() -> list[Gpu]:
    """The GPUs this process would see, without importing torch (CUDA_VISIBLE_DEVICES is honoured)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    gpus: list[Gpu] = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=20).stdout
            for line in out.strip().splitlines():
                name, _, mem = line.rpartition(",")
                gpus.append(Gpu(name.strip(), round(float(mem) / 1024, 1)))
        except (OSError, subprocess.SubprocessError, ValueError):
            gpus = []
    if not gpus and os.path.isdir("/proc/driver/nvidia/gpus"):
        gpus = [Gpu("NVIDIA GPU", 0.0) for _ in os.listdir("/proc/driver/nvidia/gpus")]
    if visible:  # indices, or UUIDs (kept by count)
        keep = [v.strip() for v in visible.split(",") if v.strip()]
        if all(k.isdigit() for k in keep):
            gpus = [gpus[int(k)] for k in keep if int(k) < len(gpus)]
        else:
            gpus = gpus[:len(keep)]
    return gpus


def memory_gb() -> float | None:
    """Total RAM of this machine, GiB (from /proc/meminfo)."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def shm_gb(path: str = "/dev/shm") -> float | None:
    """Size of the shared-memory filesystem Ray's object store lives in, GiB (None when absent)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return round(st.f_blocks * st.f_frsize / (1 << 30), 2)


def local_cluster(num_cpus: int, num_gpus: int | None) -> ClusterView:
    """The one-node Ray that ``raylign run`` starts here from ``[ray] num_cpus`` / ``num_gpus``."""
    gpus = local_gpus()
    n_gpus = len(gpus) if num_gpus is None else num_gpus
    how = f"num_gpus = {num_gpus}" if num_gpus is not None else f"{len(gpus)} GPU(s) found"
    node = Node("local", {"CPU": float(num_cpus), "GPU": float(n_gpus)}, None, memory_gb(), tuple(gpus))
    return ClusterView(f"a local Ray as `raylign run` would start it ([ray] num_cpus = {num_cpus}, {how}; "
                       f"{os.cpu_count()} cores here)", (node,))


# ---------------------------------------------------------------------------------------------- a running cluster


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Fail fast (ClusterUnreachable) when nothing listens at ``address`` ("host:port" or "ray://host:port")."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(f"Ray address {address!r} is not host:port", "give it as e.g. 10.0.0.1:6379")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterUnreachable(f"nothing answers at Ray address {address} ({exc.strerror or exc})",
                                 "start the head there with `ray start --head` (the others join with `ray start "
                                 "--address HEAD:6379`), or fix --address / RAY_ADDRESS") from exc


def remote_cluster(address: str) -> ClusterView:
    """The nodes of the running cluster at ``address``, read through a short-lived driver connection."""
    check_reachable(address)
    import ray

    try:
        from ray._private.state import available_resources_per_node
    except ImportError:  # pragma: no cover - a Ray without it: no per-node free resources
        available_resources_per_node = None
    started = not ray.is_initialized()
    try:
        if started:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        free = available_resources_per_node() if available_resources_per_node else {}
        nodes = []
        for n in ray.nodes():
            if not n.get("Alive"):
                continue
            res = {k: float(v) for k, v in n.get("Resources", {}).items()}
            mem = res.get("memory")
            name = f"{n.get('NodeManagerAddress', '?')} {n['NodeID'][:8]}"
            nodes.append(Node(name, res, free.get(n["NodeID"]), round(mem / (1 << 30), 1) if mem else None))
    except ConnectionError as exc:
        raise ClusterUnreachable(f"cannot join the Ray cluster at {address}: {exc}",
                                 "check that the head runs the same Ray and Python versions as this machine") from exc
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
    return ClusterView(f"the running cluster at {address} ({len(nodes)} node(s), Ray {ray.__version__})",
                       tuple(nodes), address, ray.__version__)


# ---------------------------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class Bundle:
    owner: str  # the role it belongs to, e.g. "grpo: rollout #1"
    resources: Mapping[str, float]  # what one actor asks for
    group: str = ""  # its placement group (the role; "" = none): bundles of a group are placed by its strategy
    strategy: str = ""  # PACK (one node when it can), STRICT_PACK (one node), SPREAD (distinct nodes when it can)
    key: str = ""  # the config key that pins it with custom resources, for messages


@dataclass
class Fit:
    placed: list[tuple[Bundle, str]] = field(default_factory=list)  # (bundle, node name)
    problem: str = ""  # one line when they do not fit


def _fmt(res: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in res.items() if v) or "nothing"


def fit(bundles: Sequence[Bundle], view: ClusterView) -> Fit:
    """Place every bundle (actors alive at the same time) on the view's nodes, largest first, on the node with the
    most room left (Ray's default spreads actors over nodes) unless its placement group's strategy prefers another
    (PACK: a node the group already uses; SPREAD: one it uses least); names the first bundle that cannot be placed."""
    result = Fit()
    if not bundles:
        return result
    for b in bundles:  # a bundle no single node could hold, even empty
        for key, want in b.resources.items():
            if want <= 0:
                continue
            have = [n.resources.get(key, 0.0) for n in view.nodes]
            if not any(have):
                kind = "custom resource" if key not in _BUILTIN else "resource"
                offered = sorted({k for n in view.nodes for k in n.resources if not k.startswith("node:")})
                result.problem = (f"{b.owner} asks for {kind} {key!r} ({want:g}) that no node has "
                                  f"(nodes offer: {', '.join(offered)})" + (f"; set by {b.key}" if b.key else ""))
                return result
            if max(have) < want:
                result.problem = (f"{b.owner} asks for {key} {want:g} per actor but the largest node has "
                                  f"{max(have):g}")
                return result
    room = {n.name: dict(n.resources) for n in view.nodes}
    group_nodes: dict[str, list[str]] = {}  # group -> nodes its bundles went to, in order
    order = sorted(bundles, key=lambda b: (-b.resources.get("GPU", 0.0), -sum(b.resources.values())))
    for b in order:
        fits = [name for name, left in room.items()
                if all(left.get(k, 0.0) + 1e-9 >= v for k, v in b.resources.items() if v > 0)]
        if not fits:
            asked: dict[str, float] = {}
            for x in bundles:
                for k, v in x.resources.items():
                    asked[k] = asked.get(k, 0.0) + v
            total = {k: view.total(k) for k in asked}
            result.problem = (f"{b.owner} does not fit: the stage's {len(bundles)} actors ask for "
                              f"{_fmt(asked)} together, the cluster has {_fmt(total)} "
                              f"over {len(view.nodes)} node(s)")
            return result
        used = group_nodes.setdefault(b.group, []) if b.group else []
        if b.strategy == "STRICT_PACK" and used:
            fits = [name for name in fits if name == used[0]]
            if not fits:
                result.problem = f"{b.owner} does not fit on node {used[0]} with the rest of {b.group} (STRICT_PACK)"
                return result
        best = max(fits, key=lambda name: (_affinity(b.strategy, name, used),
                                           room[name].get("GPU", 0.0) if b.resources.get("GPU") else 0.0,
                                           room[name].get("CPU", 0.0)))
        for k, v in b.resources.items():
            room[best][k] = room[best].get(k, 0.0) - v
        used.append(best)
        result.placed.append((b, best))
    return result


def _affinity(strategy: str, node: str, used: list[str]) -> int:
    """How a placement group's strategy ranks ``node`` given the nodes its bundles already hold (higher first)."""
    if strategy in ("PACK", "STRICT_PACK"):
        return int(node in used)
    if strategy == "SPREAD":
        return -used.count(node)
    return 0
