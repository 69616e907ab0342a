"""Loading an RL stage's prompt rows: sources or a registered task, field mapping, template, held-out split.

:func:`load_prompt_rows` returns every row as ``{"row", "ids", "where", "messages"}``: the mapped row (what the
verifiers read), its prompt rendered in the model's chat format (token ids), where it came from (``file:line``,
``task:name[seed S, row i]``) and the messages it was rendered from. Rows whose gold answer cannot be taken out
under the mapping are left out and listed in ``unmapped`` (the reference check counts them as failures).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from raylign.engine.chat_format import render_prompt
from raylign.engine.data import iter_records, resolve_paths, split_holdout
from raylign.engine.errors import ConfigError, DataError, PluginError
from raylign.engine.tasks.fields import FieldMap, Unmapped, map_row
from raylign.engine.tasks.spec import DataSource, PromptDataConfig, Task
from raylign.engine.tasks.template import build_messages, check_few_shot

EVAL_SEED_OFFSET = 1_000_003  # a generated task's held-out rows come from seed + this


@dataclass
class PromptRows:
    train: list[dict[str, Any]]  # {"row", "ids", "where", "messages"}
    evals: list[dict[str, Any]]
    skipped: int = 0  # prompts over max_prompt_tokens
    unmapped: list[tuple[str, str]] = field(default_factory=list)  # (where, why) rows left out by the mapping
    overlap: int = 0  # generated held-out rows dropped because a training row asks the same prompt
    verifier: str = ""  # the stage's default verifier (a task's own)
    verifier_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: str = ""  # where the rows came from and under which mapping, for messages


@dataclass(frozen=True)
class _Source:
    name: str  # for messages
    records: Callable[[], list[tuple[str, dict[str, Any]]]]  # (where, row) pairs
    fields: FieldMap
    template: str
    verifier: str = ""


def _as_source(entry: str | DataSource) -> DataSource:
    return DataSource(path=entry) if isinstance(entry, str) else entry


def _file_source(src: DataSource, cfg: PromptDataConfig, base: Path | None, key: str) -> _Source:
    fields = src.fields or cfg.fields
    fields.check(f"{key}.fields" if src.fields is None else f"{key} source {src.path!r} fields")

    def records():
        out = [(w, r) for p in resolve_paths([src.path], base) for w, r in iter_records(p, split=src.split)]
        if not out:
            raise DataError(f"no rows found in {src.path!r}")
        return out

    template = cfg.template if src.template is None else src.template
    return _Source(src.path, records, fields, template, src.verifier)


def _generated(task: Task, name: str, seed: int, size: int, options: Mapping[str, Any], key: str):
    if task.rows is None:
        raise ConfigError(f"{key}.task {name!r} has no row generator")
    try:
        rows = list(task.rows(seed=seed, size=size, **options))
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"{key}.task_options: task {name!r} refused them: {exc}") from None
    return [(f"task:{name}[seed {seed}, row {i}]", dict(r)) for i, r in enumerate(rows, 1)]


def load_prompt_rows(cfg: PromptDataConfig, tok, base: Path | None, seed: int, registry: Any, key: str,
                     default_verifier: str = "", verifier_options: Mapping[str, Mapping[str, Any]] | None = None
                     ) -> PromptRows:
    """The stage's training and held-out rows (see the module docstring).

    :param cfg: the stage's config (a :class:`PromptDataConfig`). :param tok: the model's tokenizer.
    :param base: the folder relative data paths resolve against. :param seed: the run's seed.
    :param registry: the driver's registry (tasks). :param key: the stage's config section, for errors.
    :param default_verifier: the stage's verifier (a task's own replaces it); :param verifier_options: the stage's.

    A row whose verifier (its ``verifier`` field, else the default) is not registered fails here, naming it.
    """
    check_few_shot(cfg.few_shot, f"{key}.few_shot")
    options = {k: dict(v) for k, v in (verifier_options or {}).items()}
    system, verifier = cfg.system, default_verifier
    generated = False  # a generator task: its held-out rows are checked against its training rows
    if cfg.task:
        if cfg.data or cfg.eval_data:
            raise ConfigError(f"{key}.task = {cfg.task!r} and {key}.data are both set: a task brings its own rows")
        task: Task = registry.get("tasks", cfg.task)
        verifier, system = task.verifier, cfg.system or task.system
        options[task.verifier] = {**task.verifier_options, **options.get(task.verifier, {})}
        fields = cfg.fields if cfg.fields != FieldMap() else task.fields
        fields.check(f"{key}.fields")
        template = cfg.template or task.template
        if task.rows is not None:
            opts = dict(cfg.task_options)
            size = opts.pop("size", task.size)
            train_src = _Source(f"task {cfg.task!r}", lambda: _generated(task, cfg.task, seed, size, opts, key),
                                fields, template)
            held_src = _Source(f"task {cfg.task!r} (held out, seed {seed + EVAL_SEED_OFFSET})",
                               lambda: _generated(task, cfg.task, seed + EVAL_SEED_OFFSET, cfg.eval_size, opts, key),
                               fields, template)
            sources, held_sources, generated = [train_src], [held_src], True
        else:
            if cfg.task_options:
                raise ConfigError(f"{key}.task_options: task {cfg.task!r} reads files and takes no options")
            as_cfg = replace(cfg, fields=fields, template=template)
            sources = [_file_source(DataSource(p), as_cfg, base, key) for p in task.data]
            held_sources = [_file_source(DataSource(p), as_cfg, base, key) for p in task.eval_data]
    else:
        if cfg.task_options:
            raise ConfigError(f"{key}.task_options is set but {key}.task is not")
        if not cfg.data:
            raise ConfigError(f"{key}.data is empty: list JSONL/Parquet files of prompt rows (or set {key}.task)")
        sources = [_file_source(_as_source(e), cfg, base, key) for e in cfg.data]
        held_sources = [_file_source(_as_source(e), cfg, base, key) for e in cfg.eval_data]

    def read(srcs: Sequence[_Source]):
        return [(src, where, row) for src in srcs for where, row in src.records()]

    records = read(sources)
    if held_sources:
        held = read(held_sources)
    else:
        records, held = split_holdout(records, cfg.eval_fraction, seed)
    out = PromptRows(train=[], evals=[], verifier=verifier, verifier_options=options,
                     sources="; ".join(f"{s.name} with fields {s.fields.describe()}"
                                       + (f" and template {s.template!r}" if s.template else "") for s in sources))

    known = set(registry.names("verifiers"))

    def prepare(items, into: list, max_rows: int | None = None):
        for src, where, row in items:
            if max_rows is not None and len(into) >= max_rows:
                return
            try:
                mapped = map_row(row, src.fields, where)
            except Unmapped as exc:
                out.unmapped.append((where, str(exc)))
                continue
            if src.verifier and "verifier" not in mapped:
                mapped["verifier"] = src.verifier
            messages = build_messages(row, src.fields.prompt, src.template, system, cfg.few_shot, where)
            ids = tok(render_prompt(tok, messages), add_special_tokens=False)["input_ids"]
            if len(ids) > cfg.max_prompt_tokens:
                out.skipped += 1
                continue
            name = mapped.get("verifier") or verifier
            if name and name not in known:
                try:
                    registry.get("verifiers", name)
                except PluginError as exc:
                    raise DataError(f"{where}: {exc}") from None
            into.append({"row": mapped, "ids": ids, "where": where, "messages": messages})

    prepare(records, out.train)
    prepare(held, out.evals, cfg.eval_size)
    if generated:  # no held-out prompt is one the training rows ask
        seen = {tuple(r["ids"]) for r in out.train}
        kept = [r for r in out.evals if tuple(r["ids"]) not in seen]
        out.overlap = len(out.evals) - len(kept)
        out.evals = kept
        if not kept:
            raise DataError(f"{key}: every held-out row of task {cfg.task!r} also appears among its training rows; "
                            f"the generator gives too few distinct rows for task_options {dict(cfg.task_options)}")
    if not out.train:
        why = f"; e.g. {out.unmapped[0][1]}" if out.unmapped else ""
        raise DataError(f"{key}: no usable training rows in {out.sources}{why}")
    return out
