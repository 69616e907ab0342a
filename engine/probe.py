"""Probes: fixed prompts answered greedily after every stage, so a run's story can be read off the console."""
from __future__ import annotations

from pathlib import Path

import torch


@torch.no_grad()
def answer_probes(model_dir: Path, prompts: list[str], max_new_tokens: int) -> list[dict[str, str]]:
    """Greedy answers of the model in ``model_dir`` to ``prompts`` rendered with its chat template."""
    from raylign.engine.chat_format import render_prompt
    from raylign.engine.modeling import generate_greedy, load_model, load_tokenizer

    tok = load_tokenizer(model_dir)
    model = load_model(model_dir).eval()
    replies = generate_greedy(model, tok, [render_prompt(tok, p) for p in prompts], max_new_tokens)
    return [{"prompt": p, "answer": r["text"], "finished": r["finished"]} for p, r in zip(prompts, replies)]


def print_probes(console, stage: str, probes: list[dict[str, str]]) -> None:
    from rich.panel import Panel
    from rich.text import Text

    body = Text()
    for i, p in enumerate(probes):
        if i:
            body.append("\n")
        body.append(f"> {p['prompt']}\n", style="bold cyan")
        body.append(p["answer"].strip() or "(empty)")
        body.append("\n")
    console.print(Panel(body, title=f"probes after [bold]{stage}", expand=False))
