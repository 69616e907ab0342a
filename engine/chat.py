"""``raylign chat MODEL_DIR``: an interactive conversation with a model directory, replies streamed."""
from __future__ import annotations

import sys
import threading


def chat_command(args) -> int:
    from transformers import TextIteratorStreamer

    from raylign.engine.chat_format import render_prompt
    from raylign.engine.modeling import load_model, load_tokenizer, stop_token_ids

    tok = load_tokenizer(args.model_dir)
    model = load_model(args.model_dir).eval()
    history: list[dict[str, str]] = []
    if args.system:
        history.append({"role": "system", "content": args.system})
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {args.model_dir} (empty line or Ctrl-D ends)")
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            break
        if not line.strip():
            break
        history.append({"role": "user", "content": line})
        enc = tok(render_prompt(tok, history), return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        gen_kwargs = dict(**enc, max_new_tokens=args.max_tokens, eos_token_id=stop_token_ids(tok),
                          pad_token_id=tok.pad_token_id, streamer=streamer,
                          do_sample=args.temperature > 0)
        if args.temperature > 0:
            gen_kwargs["temperature"] = args.temperature
        worker = threading.Thread(target=model.generate, kwargs=gen_kwargs, daemon=True)
        worker.start()
        reply = []
        for piece in streamer:
            reply.append(piece)
            print(piece, end="", flush=True)
        worker.join()
        print()
        history.append({"role": "assistant", "content": "".join(reply).strip()})
    return 0
