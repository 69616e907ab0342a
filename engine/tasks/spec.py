"""What an RL stage's prompt rows are: data sources with their field mapping, a template, a registered task, and
the reference check, as config keys shared by every stage that asks prompts (grpo, ppo).

A stage config inherits :class:`PromptDataConfig`; its keys read::

    [grpo]
    data = ["train.jsonl", { path = "gsm8k.parquet", fields = { prompt = "question", answer_after = "####" } }]
    eval_data = ["held_out.jsonl"]
    fields = { prompt = "question" }          # the mapping of sources that do not give their own
    template = "{question}\\nPut the final answer in \\boxed{}."
    check = { rows = 64, min_pass = 0.9 }     # the reference check at stage start

or, with a registered task (``raylign_register_tasks``), ``task = "reasoning_gym"`` and ``task_options``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from raylign.engine.tasks.fields import FieldMap


@dataclass(frozen=True)
class DataSource:
    path: str  # a file, directory, glob or saved HF dataset (relative to the config file)
    split: str = ""  # a saved HF DatasetDict's split ("" = train, else the first)
    fields: FieldMap | None = None  # this source's field mapping (None = the stage's `fields`)
    template: str | None = None  # this source's prompt template (None = the stage's `template`)
    verifier: str = ""  # this source's verifier, set on rows that name none ("" = the stage's)


@dataclass(frozen=True)
class TaskCheck:
    rows: int = 64  # rows scored with their own reference at stage start (0 = no reference check)
    min_pass: float = 0.9  # the stage stops when a smaller share of them passes (a wrong mapping scores all 0)
    solve_rows: int = 32  # rows the starting model answers greedily and with k samples (0 = not measured)
    k: int = 4  # samples per row for the pass@k share


@dataclass(frozen=True)
class PromptDataConfig:
    data: tuple[str | DataSource, ...] = ()  # prompt rows: files (JSONL/Parquet/HF dir) or {path, fields, ...}
    eval_data: tuple[str | DataSource, ...] = ()  # held-out rows (empty = hold out eval_fraction of data)
    eval_fraction: float = 0.05  # share held out when eval_data is empty
    eval_size: int = 200  # held-out prompts in the greedy eval
    task: str = ""  # a registered task: its rows, template and verifier replace data/eval_data ("" = none)
    task_options: dict[str, Any] = field(default_factory=dict)  # the task's options (size, its generator's)
    fields: FieldMap = field(default_factory=FieldMap)  # which row field is the prompt, the answer, the tests
    template: str = ""  # the prompt built from row fields, e.g. "{question}\nAnswer with a number." ("" = as is)
    system: str = ""  # system message for every prompt ("" = none)
    few_shot: tuple[dict[str, Any], ...] = ()  # examples before the prompt: row fields plus `response`
    max_prompt_tokens: int = 128  # longer prompts are skipped (counted in the log)
    check: TaskCheck = field(default_factory=TaskCheck)  # reference check and starting solve rates


@dataclass(frozen=True)
class Task:
    """A registered task (``raylign_register_tasks``): where its rows come from, how they are asked and scored.

    Rows come from ``rows(seed=..., size=..., **options)`` (a generator: training rows from the run's seed,
    held-out rows from another seed, checked not to overlap) or from ``data``/``eval_data`` files.
    """

    verifier: str  # the registered verifier that scores its rows
    rows: Callable[..., Iterable[Mapping[str, Any]]] | None = None  # rows(seed=, size=, **options) -> rows
    data: tuple[str, ...] = ()  # or files of rows (absolute paths, or relative to the config file)
    eval_data: tuple[str, ...] = ()  # held-out files (with `data`)
    size: int = 2000  # training rows generated (option `size` overrides)
    fields: FieldMap = field(default_factory=FieldMap)  # its rows' mapping
    template: str = ""  # its prompt template (a stage's `template` overrides)
    system: str = ""  # its system message (a stage's `system` overrides)
    verifier_options: Mapping[str, Any] = field(default_factory=dict)  # its verifier's options
    description: str = ""  # one line for `raylign plugins`
