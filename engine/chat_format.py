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


def conversation(prompt: str | list[dict[str, Any]], reply: str | list[dict[str, Any]]) -> list[dict[str, str]]:
    """A prompt and a reply as one chat: the reply is a string (one assistant turn) or messages (the assistant's
    turns, or the whole conversation when it starts with the prompt's own messages)."""
    msgs = as_messages(prompt)
    if isinstance(reply, str):
        return msgs + [{"role": "assistant", "content": reply}]
    turns = [{"role": m["role"], "content": m["content"]} for m in reply]
    if turns[: len(msgs)] == msgs:
        return turns
    return msgs + turns


def encode_conversation(tok, messages: list[dict], system: str = "", max_len: int | None = None
                        ) -> tuple[list[int], list[float]]:
    """Token ids of the conversation and a mask that is 1 on assistant tokens (their content and end marker)."""
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}] + messages
    ids: list[int] = []
    mask: list[float] = []
    done = ""  # the conversation text tokenized so far
    for i, m in enumerate(messages):
        # the template up to this turn's content (the assistant header included), then the turn itself; a
        # conversation that opens with an assistant turn has no earlier text, so its header is trained too
        before = (tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=m["role"] == "assistant")
                  if i else "")
        upto = tok.apply_chat_template(messages[: i + 1], tokenize=False)
        head = tok(before[len(done):], add_special_tokens=False)["input_ids"] if len(before) > len(done) else []
        body = tok(upto[len(before):], add_special_tokens=False)["input_ids"]
        ids.extend(head + body)
        mask.extend([0.0] * len(head) + [1.0 if m["role"] == "assistant" else 0.0] * len(body))
        done = upto
    if max_len is not None:
        ids, mask = ids[:max_len], mask[:max_len]
    return ids, mask


def reply_end(tok, ids: list[int], mask: list[float]) -> int:
    """Index of the last token of the last reply: its end-of-turn marker (``<|im_end|>``), not the template's
    whitespace after it. A reward model reads its score here; -1 when no token is an assistant token."""
    last = -1
    for i, (t, m) in enumerate(zip(ids, mask)):
        if m and (tok.convert_ids_to_tokens(t) in tok.all_special_tokens or tok.decode([t]).strip()):
            last = i
    return last
