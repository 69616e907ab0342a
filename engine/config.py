"""TOML → frozen dataclasses, one per component, with ``--set section.key=value`` overrides.

Unknown keys and wrong types fail with the dotted path and a close-match suggestion. Each component receives
only its own section; a stage's section is validated by the ``config_cls`` its plugin declares.
"""
from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from raylign.engine.errors import ConfigError

# ---------------------------------------------------------------------------------------------- components


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"  # the run directory is <output_dir>/<name>
    output_dir: str = "runs"  # where run directories go
    seed: int = 0  # seeds data order, init and sampling in every stage
    pipeline: tuple[str, ...] = ()  # stage names in order; each has a [section] of the same name
    base_model: str = ""  # HF model dir the first stage starts from ("" when the first stage builds one)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # learner device; auto = cuda when present
    probes: tuple[str, ...] = ("What is an LLM?", "What is 12+30?")  # printed after every stage
    probe_max_tokens: int = 48  # greedy tokens generated per probe
    rollout_groups_per_step: int = 4  # RL stages: groups per step written to rollouts/<stage>.jsonl (-1 = all)
    rollout_eval_prompts: int = -1  # RL stages: greedy held-out answers written per eval (-1 = all, 0 = none)
    rollout_max_chars: int = 2000  # characters kept of each prompt and completion there (details: a quarter)
    observers: tuple[str, ...] = ("tensorboard",)  # who watches the run: tensorboard, wandb, mlflow (the `observers`
    # extra) or a plugin's observer (engine/observers/); each gets the step metrics, the resolved config and the plots


@dataclass(frozen=True)
class RayConfig:
    address: str = ""  # join this cluster ("" = $RAY_ADDRESS if set, else start a local Ray)
    num_cpus: int = 8  # logical CPUs of a local Ray (over-subscribed on purpose so every role can be placed)
    num_gpus: int | None = None  # GPUs of a local Ray (None = detect)
    learner_num_cpus: float = 1.0  # logical CPUs reserved by the learner actor
    learner_num_gpus: float = 0.0  # GPUs of the learner actor (set 1 on GPU machines)
    torch_threads: int = 0  # torch/OpenMP threads of rollout and reward actors (0 = cores / 2, at least 1)
    learner_threads: int = 0  # torch threads of the learner (0 = every core of its node: the roles take turns)
    learners: int = 1  # data-parallel ranks of every trained learner (policy, critic): each a full copy, its share
    # of each step's micro-batches, gradients summed over torch.distributed (gloo on CPU, NCCL on GPU)
    learner_strategy: Literal["ddp", "fsdp2"] = "ddp"  # how learners > 1 hold the model: ddp = a whole copy per
    # rank; fsdp2 = parameters, gradients and AdamW state sharded over the ranks (torch FSDP2, per decoder layer
    # + root; engine/fsdp.py). Checkpoints and model dirs are the same either way (a resume may switch)
    learner_param_dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # fsdp2: dtype the gathered parameters
    # compute in (auto: bfloat16 on GPUs, float32 on CPUs); shards, gradient reduction and AdamW stay float32
    learner_resources: dict[str, float] = field(default_factory=dict)  # custom resources per learner, e.g.
    # {node_c = 1} pins the learners to the node(s) started with that resource (engine/placement.py)
    placement_timeout_s: float = 120.0  # a role whose placement group Ray cannot reserve in this time stops the run
    placement: Literal["separate", "colocated"] = "separate"  # separate: a placement group per role; colocated:
    # policy learner rank i and rollout replica i share bundle i (its devices), and the engines sleep while the
    # learner trains (rollout.sleep_level; engine/colocate.py). Needs rollout.num_workers = learners, max_staleness 0
    learner_max_restarts: int = 2  # a learner that dies restarts its stage from the stage's last checkpoint (the
    # same steps and metrics as a `--resume`), at most this many times per stage; then the run stops with one line

    def __post_init__(self):
        if self.learner_max_restarts < 0:
            raise ValueError(f"learner_max_restarts must be 0 or more, got {self.learner_max_restarts}")
        if self.learners < 1:
            raise ValueError(f"learners must be 1 or more (data-parallel learner ranks), got {self.learners}")
        if self.learners > 1 and 0 < self.learner_num_gpus < 1 and self.placement != "colocated":
            raise ValueError(f"learners = {self.learners} needs a whole GPU per rank (NCCL refuses two ranks on one "
                             f"device): set learner_num_gpus = 1, not {self.learner_num_gpus} (colocated mode gives "
                             f"each rank its own GPU, shared with a rollout engine)")


@dataclass(frozen=True)
class RolloutConfig:
    num_workers: int = 1  # rollout actors, one vLLM engine each
    num_cpus: float = 1.0  # logical CPUs per rollout actor
    num_gpus: float = 0.0  # GPUs per rollout actor (tensor_parallel_size on GPUs)
    tensor_parallel_size: int = 1  # vLLM tensor parallelism (GPUs only)
    gpu_memory_utilization: float = 0.5  # vLLM share of a GPU's memory
    kv_cache_gb: int = 1  # VLLM_CPU_KVCACHE_SPACE on CPUs
    max_model_len: int = 512  # longest prompt + completion the engines accept
    max_num_seqs: int = 256  # vLLM batch size
    max_num_batched_tokens: int = 32768  # tokens per engine step; large enough that prompts are never split
    # (vLLM-CPU cannot rewind a seeded sampler after a split prefill: "CPU Generator does not use offset")
    enforce_eager: bool = True  # skip graph capture (faster start for tiny models)
    sync_deadline_s: float = 120.0  # a weight sync slower than this raises
    canary_tolerance: float = 0.05  # max |logprob diff| between learner and fleet after a sync
    sync_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # dtype the weights travel in to the
    # engines (auto = the learner's own); bfloat16 halves a CPU sync's bytes, and the engines then serve the
    # learner's weights rounded to bf16 (the canary sees that rounding: benchmarks/weight_sync.py measures it)
    sync_parts: int = 4  # CPU (flat) syncs: the learner stores its weights in this many parts, so the engines
    # load one part while it stores the next
    weight_transport: Literal["auto", "flat", "shm_file", "collective"] = "auto"  # how weights reach the engines
    # (engine/weight_sync.py): auto = flat for CPU engines, shm_file for GPU engines; collective = the learner
    # broadcasts in a process group of its own with every engine worker (gloo on CPU, NCCL on GPU)
    start_timeout_s: float = 600.0  # engine start deadline
    max_restarts: int = 3  # rollout workers replaced (SIGKILL, node loss) over a fleet's life before the run stops
    resources: dict[str, float] = field(default_factory=dict)  # custom resources per rollout actor ({node_b = 1}
    # pins it to the node(s) that offer node_b; engine/placement.py)
    sleep_level: int = 1  # colocated mode (ray.placement): vLLM sleep level while the learner trains; 1 = weights
    # offloaded to CPU memory, KV cache discarded; 2 = both discarded (the following weight sync reloads them)
    max_staleness: int = 0  # weight versions generation may run ahead of training (0 = synchronous: generate,
    # score, train, sync in turn; k > 0: the next batches are generated while the learner trains, from weights at
    # most k syncs old; engine/rollout_stream.py)

    def __post_init__(self):
        if self.max_staleness < 0:
            raise ValueError(f"max_staleness must be 0 (synchronous) or more, got {self.max_staleness}")
        if self.sync_parts < 1:
            raise ValueError(f"sync_parts must be 1 or more, got {self.sync_parts}")
        if self.sleep_level not in (1, 2):
            raise ValueError(f"sleep_level must be 1 (weights offloaded to CPU) or 2 (weights discarded), got "
                             f"{self.sleep_level}")
        if self.weight_transport == "flat" and self.tensor_parallel_size > 1:
            raise ValueError(f"weight_transport = 'flat' needs each engine in its actor's process, but "
                             f"tensor_parallel_size = {self.tensor_parallel_size} runs it multiprocess: use shm_file "
                             f"or collective")
        if self.weight_transport == "collective" and 0 < self.num_gpus < 1:
            raise ValueError(f"weight_transport = 'collective' on GPUs broadcasts over NCCL, which refuses two ranks "
                             f"on one device: num_gpus = {self.num_gpus} shares a GPU; use whole GPUs or shm_file")


@dataclass(frozen=True)
class RewardsConfig:
    num_workers: int = 2  # verifier actors in the reward fleet
    num_cpus: float = 0.5  # logical CPUs per verifier actor
    procs_per_worker: int = 2  # verifier processes per actor (each killed and replaced on a deadline)
    timeout_s: float = 10.0  # hard wall-clock deadline per verification (the worker process is killed)
    memory_mb: int = 2048  # address-space limit of a verifier worker process
    resources: dict[str, float] = field(default_factory=dict)  # custom resources per verifier actor (pins them)
    max_restarts: int = 3  # actors replaced per reward role (the verifier actors; each provider term's replicas)
    # over a stage's life before the run stops; a verifier *process* that dies is re-forked and never counted


@dataclass(frozen=True)
class StageSpec:
    name: str  # the stage's name in the pipeline (its section name)
    plugin: str  # the registered stage plugin that runs it
    config: Any  # the plugin's frozen config dataclass


@dataclass(frozen=True)
class Config:
    run: RunConfig
    ray: RayConfig
    rollout: RolloutConfig
    rewards: RewardsConfig
    stages: tuple[StageSpec, ...]
    resolved: Mapping[str, Any] = field(repr=False)  # plain data of everything above (written to config.toml)
    source: str = "<memory>"  # the file it came from

    @property
    def base_dir(self) -> Path:
        """Where relative data paths resolve: the config file's folder (the cwd for a config built in memory)."""
        return Path(self.source).resolve().parent if self.source != "<memory>" else Path.cwd()


ENGINE_SECTIONS = {"run": RunConfig, "ray": RayConfig, "rollout": RolloutConfig, "rewards": RewardsConfig}

# ---------------------------------------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (lists → tuples, int → float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: must be one of {list(args)}, got {value!r}{hint}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        item_tp = args[0] if args else Any
        return tuple(_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _convert(v, vt, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__} {value!r}")
        return from_dict(tp, value, path)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {type(value).__name__} {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type, data: Mapping[str, Any], path: str) -> Any:
    """Build the frozen dataclass ``cls`` from ``data``; unknown keys and wrong types name ``path.key``."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" Did you mean {path}.{close[0]}?" if close else ""
            raise ConfigError(f"unknown config key {path}.{key}.{hint} Known keys: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing config key {path}.{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def to_plain(obj: Any) -> Any:
    """A dataclass tree as TOML-ready plain data (None values dropped)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if getattr(obj, f.name) is not None}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items() if v is not None}
    return obj


# ---------------------------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` → (["section", "key"], value); the value is read as TOML, else as a string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if len(parts) < 2:
        raise ConfigError(f"--set {text!r}: the key must name a section and a key, like run.seed=1")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {p} is not a table")
        node[parts[-1]] = value
    return data


# ---------------------------------------------------------------------------------------------- loading


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _is_stage_section(key: str, section: Any, registry) -> bool:
    plugin = section.get("plugin", key) if isinstance(section, Mapping) else key
    return plugin in registry.names("stages")


def check_observers(run: RunConfig, registry) -> None:
    """Each of ``run.observers`` is "tensorboard" or a plugin's ``OBSERVER_NAME`` whose ``OBSERVER_REQUIRES`` module
    is installed (see :mod:`raylign.engine.observers`)."""
    import importlib.util

    pm = getattr(registry, "pm", None)
    plugins = {getattr(p, "OBSERVER_NAME", None): p for p in (pm.get_plugins() if pm else ())}
    for i, name in enumerate(run.observers):
        if name == "tensorboard" or pm is None:
            continue
        if name not in plugins:
            known = ", ".join(["tensorboard", *sorted(n for n in plugins if n)])
            raise ConfigError(f"run.observers[{i}] = {name!r} is not an observer; known: {known}")
        need = getattr(plugins[name], "OBSERVER_REQUIRES", "")
        if need and importlib.util.find_spec(need) is None:
            raise ConfigError(f"run.observers[{i}] = {name!r} needs the {need} package: pip install "
                              f"'raylign[observers]' (or pip install {need})")


def build_config(data: Mapping[str, Any], registry, source: str = "<memory>") -> Config:
    """Validate plain data against the engine's sections and each stage plugin's ``config_cls``."""
    data = dict(data)
    engine = {name: from_dict(cls, data.get(name, {}) or {}, name) for name, cls in ENGINE_SECTIONS.items()}
    run: RunConfig = engine["run"]
    check_observers(run, registry)
    if not run.pipeline:
        raise ConfigError(f"{source}: run.pipeline is empty: list the stages to run, e.g. pipeline = [\"pretrain\"]")
    stage_names = set(run.pipeline)
    for key in data:
        if key not in ENGINE_SECTIONS and key not in stage_names and _is_stage_section(key, data[key], registry):
            # a stage section the pipeline does not run now (e.g. --set run.pipeline=[...]): still validated
            section = dict(data[key] or {})
            from_dict(registry.get("stages", section.pop("plugin", key)).config_cls, section, key)
        elif key not in ENGINE_SECTIONS and key not in stage_names:
            known = list(ENGINE_SECTIONS) + list(run.pipeline)
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean [{close[0]}]?" if close else ""
            raise ConfigError(
                f"unknown config section [{key}] in {source}: it is neither an engine section "
                f"({', '.join(ENGINE_SECTIONS)}) nor a stage in run.pipeline ({', '.join(run.pipeline)}).{hint}"
            )
    rollout, ray_cfg = engine["rollout"], engine["ray"]
    if rollout.weight_transport == "collective" and rollout.num_gpus > 0 and ray_cfg.learner_num_gpus != 1:
        raise ConfigError(f"rollout.weight_transport = 'collective' with GPU engines broadcasts over NCCL from the "
                          f"learner's own GPU: set ray.learner_num_gpus = 1 (it is {ray_cfg.learner_num_gpus})")
    if rollout.weight_transport == "collective" and rollout.num_gpus > 0 and ray_cfg.placement == "colocated":
        raise ConfigError("rollout.weight_transport = 'collective' with GPU engines broadcasts over NCCL, which "
                          "refuses two ranks on one device, and ray.placement = 'colocated' puts learner rank i and "
                          "engine i on one GPU: use weight_transport = 'shm_file' or 'auto'")
    from raylign.engine.placement import check_colocated

    check_colocated(engine["ray"], engine["rollout"])  # colocated mode's constraints (engine/colocate.py)
    if len(stage_names) != len(run.pipeline):
        raise ConfigError(f"run.pipeline names a stage twice: {list(run.pipeline)}; give each a distinct name")
    stages = []
    resolved: dict[str, Any] = {name: to_plain(obj) for name, obj in engine.items()}
    for name in run.pipeline:
        section = dict(data.get(name, {}) or {})
        plugin = section.pop("plugin", name)
        stage_cls = registry.get("stages", plugin)
        cfg = from_dict(stage_cls.config_cls, section, name)
        stages.append(StageSpec(name=name, plugin=plugin, config=cfg))
        resolved[name] = {"plugin": plugin, **to_plain(cfg)}
    return Config(stages=tuple(stages), resolved=resolved, source=source, **engine)


def load_config(path: str | Path, registry, overrides: list[str] = ()) -> Config:
    data = apply_overrides(read_toml(path), list(overrides))
    return build_config(data, registry, source=str(path))


# ---------------------------------------------------------------------------------------------- writing


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def dumps_toml(data: Mapping[str, Any]) -> str:
    """Plain data (tables of scalars, lists, nested tables) as TOML text."""
    lines: list[str] = []

    def table(prefix: str, tbl: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in tbl.items() if not isinstance(v, Mapping)}
        subs = {k: v for k, v in tbl.items() if isinstance(v, Mapping)}
        if prefix:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items())
        for k, v in subs.items():
            table(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v)

    table("", data)
    return "\n".join(lines).lstrip("\n") + "\n"
