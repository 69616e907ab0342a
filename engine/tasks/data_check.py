"""``raylign data check CONFIG``: a task's rows, prompts and rewards checked before any training starts.

For each stage that asks prompts (grpo, ppo; ``--stage`` picks one): where the rows come from and under which
field mapping, how many were read, left out or held out, the first rendered prompts exactly as the model will see
them, the reference check (a sample of rows scored with its own reference, :mod:`raylign.engine.tasks.check`) and,
when the stage's starting model exists, the share of rows it solves greedily and with k samples. No Ray, no vLLM:
verifiers run in the local verifier pool (as ``raylign verify``), the model in-process with transformers.
Exit status 0 when every reference check passes; a failing one ends with one line naming the source, the
mapping and a failing row.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from raylign.engine.errors import ConfigError
from raylign.engine.tasks.check import CheckReport, reference_check, require_pass, solve_rates
from raylign.engine.tasks.spec import PromptDataConfig


class PlainText:
    """Rendering without a model: prompts as plain text, one id per UTF-8 byte (only counted, never decoded)."""

    chat_template = None

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": list(text.encode("utf-8"))}


def starting_model(cfg, stage_name: str, registry) -> Path | None:
    """The model directory ``stage_name`` would start from in this run, if it exists already."""
    model = Path(cfg.run.base_model) if cfg.run.base_model else None
    run_dir = Path(cfg.run.output_dir) / cfg.run.name
    for spec in cfg.stages:
        if spec.name == stage_name:
            break
        if not getattr(registry.get("stages", spec.plugin), "side_model", False):
            model = run_dir / "models" / spec.name
    return model if model is not None and (model / "config.json").exists() else None


def _hf_generate(model_dir: Path, tok, max_tokens: int, seed: int):
    import torch
    from transformers import AutoModelForCausalLM

    from raylign.engine.modeling import stop_token_ids

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    stops = stop_token_ids(tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else stops[0]

    def generate(ids: list[list[int]], n: int, temperature: float) -> list[list[str]]:
        torch.manual_seed(seed)
        out: list[list[str]] = []
        kwargs = dict(do_sample=True, temperature=temperature, top_p=1.0, top_k=0) if temperature > 0 else dict(
            do_sample=False)
        for start in range(0, len(ids), 16):  # left-padded batches
            chunk = ids[start:start + 16]
            width = max(len(p) for p in chunk)
            x = torch.tensor([[pad] * (width - len(p)) + p for p in chunk])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
            with torch.no_grad():
                y = model.generate(x, attention_mask=mask, max_new_tokens=max_tokens, num_return_sequences=n,
                                   eos_token_id=stops, pad_token_id=pad, **kwargs)
            texts = [tok.decode(row[width:], skip_special_tokens=True) for row in y]
            out.extend(texts[i * n:(i + 1) * n] for i in range(len(chunk)))
        return out

    return generate


def check_stage(cfg, spec, registry, console, show: int, model_dir: Path | None, use_model: bool) -> CheckReport:
    from rich.markup import escape

    from raylign.engine.config import RewardsConfig
    from raylign.engine.modeling import load_tokenizer
    from raylign.engine.rewards.pool import VerifierPool
    from raylign.engine.tasks.load import load_prompt_rows

    stage_cfg: PromptDataConfig = spec.config
    tok = load_tokenizer(model_dir) if model_dir is not None else PlainText()
    if model_dir is None:
        console.print(f"{spec.name}: its starting model does not exist yet: prompts shown as plain text, no token "
                      f"limit, no solve rates")
        stage_cfg = dataclasses.replace(stage_cfg, max_prompt_tokens=10**9)
    verifier = getattr(stage_cfg, "verifier", "")
    options = getattr(stage_cfg, "verifier_options", {})
    rows = load_prompt_rows(stage_cfg, tok, cfg.base_dir, cfg.run.seed, registry, spec.name, verifier, options)
    console.print(f"[bold]{spec.name}[/]: {escape(rows.sources)}")
    console.print(f"  {len(rows.train)} training rows, {len(rows.evals)} held out, {len(rows.unmapped)} left out by "
                  f"the mapping, {rows.skipped} over {stage_cfg.max_prompt_tokens} tokens"
                  + (f", {rows.overlap} held-out rows dropped (asked in training)" if rows.overlap else ""))
    for where, why in rows.unmapped[:3]:
        console.print(f"  left out: {why}", markup=False)
    for r in rows.train[:show]:
        console.rule(escape(f"{spec.name} prompt: {r['where']}"), style="dim")
        console.print(tok.decode(r["ids"]) if model_dir is not None else "\n".join(m["content"] for m in r["messages"]),
                      markup=False, highlight=False)
    console.rule(style="dim")

    report = CheckReport()
    rc: RewardsConfig = cfg.rewards
    with VerifierPool(workers=max(1, min(rc.num_workers, 4)), timeout_s=rc.timeout_s, memory_mb=rc.memory_mb,
                      verifier_options=rows.verifier_options) as pool:
        def name_of(row: dict[str, Any]) -> str:
            return row.get("verifier") or rows.verifier

        def score(samples):
            return pool.verify_many([(name_of(s["task"]), s["completion"], s["task"]) for s in samples])

        if not rows.verifier and not any(r["row"].get("verifier") for r in rows.train):
            console.print(f"{spec.name}: no verifier names these rows (a reward-model reward): no reference check")
            return report
        check = stage_cfg.check
        if check.rows > 0:
            reference_check(rows.train, rows.unmapped, lambda row: registry.get("verifiers", name_of(row)), score,
                            check.rows, cfg.run.seed, report)
        if use_model and model_dir is not None and check.solve_rows > 0:
            generate = _hf_generate(model_dir, tok, getattr(stage_cfg, "max_new_tokens", 64), cfg.run.seed)
            solve_rates(rows.train, generate, score, check.solve_rows, check.k, cfg.run.seed, report)
    console.print(f"{spec.name}: {report.line() or 'nothing to check'}", markup=False)
    if report.failing and (report.pass_share or 0.0) >= check.min_pass:  # a failing check's line shows it
        console.print(f"  a failing row: {report.failing}", markup=False)
    require_pass(report, check.min_pass, spec.name, rows.sources)
    return report


def data_check_command(args) -> int:
    from rich.console import Console

    from raylign.engine.config import load_config
    from raylign.engine.plugins import get_registry

    registry = get_registry()
    cfg = load_config(args.config, registry, list(args.overrides))
    stages = [s for s in cfg.stages if isinstance(s.config, PromptDataConfig)]
    if args.stage:
        stages = [s for s in stages if s.name == args.stage]
        if not stages:
            raise ConfigError(f"--stage {args.stage!r}: no stage of that name asks prompts in {args.config}")
    if not stages:
        raise ConfigError(f"{args.config}: no stage asks prompts (grpo, ppo, ...): nothing to check")
    console = Console(width=120)
    for spec in stages:
        model = Path(args.model) if args.model else starting_model(cfg, spec.name, registry)
        check_stage(cfg, spec, registry, console, args.show, model, not args.no_model)
    return 0
