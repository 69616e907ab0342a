"""Rendering prompts with a tokenizer's chat template (string prompts become one user message)."""
from __future__ import annotations

from typing import Any


def as_messages(prompt: str | list[dict[str, Any]], system: str | None = None) -> list[dict[str, str]]:
    msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if system and (not msgs or msgs[0].get("role") != "system"):
        msgs.insert(0, {"role": "system", "content": system})
    return msgs


def render_prompt(tokenizer, prompt: str | list[dict[str, Any]], system: str | None = None) -> str:
    """The text a model sees before it answers (generation prompt added)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(as_messages(prompt, system), tokenize=False, add_generation_prompt=True)
    text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
    return text + "\n"
