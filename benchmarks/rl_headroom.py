"""How much a GRPO stage can gain on a task set: greedy accuracy against sampled accuracy and pass@k.

    .venv/bin/python benchmarks/rl_headroom.py --model DIR [--data examples/data/math_eval.jsonl ...]
        [--k 8] [--limit 160] [--max-new 32] [--temperature 1.0]

GRPO raises greedy accuracy on held-out tasks only where the model already samples right answers there
(pass@k well above greedy) *and* what it learns on the training tasks carries over. This prints, for each task
file, greedy accuracy, mean sampled accuracy (sample@1) and pass@k, scored by the registered verifier each row
names (``verifier`` field, else ``--verifier``), run in this process with its default options. Compare a train
file with its eval file and a model before and after GRPO: a train gain without an eval gain is memorization.

Generation is plain HF ``generate`` (no vLLM, no Ray), so it runs anywhere the model loads.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF model directory")
    ap.add_argument("--data", nargs="+", default=[str(ROOT / "examples/data/math_train.jsonl"),
                                                  str(ROOT / "examples/data/math_eval.jsonl")])
    ap.add_argument("--verifier", default="math", help="for rows without a `verifier` field")
    ap.add_argument("--k", type=int, default=8, help="samples per task")
    ap.add_argument("--limit", type=int, default=160, help="tasks per file (the first ones)")
    ap.add_argument("--max-new", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = ap.parse_args()

    import torch

    from raylign.engine.chat_format import render_prompt
    from raylign.engine.modeling import generate_greedy, load_model, load_tokenizer, stop_token_ids
    from raylign.engine.plugins import get_registry
    from raylign.engine.rewards.worker import instantiate_verifier
    from raylign.verifiers import Verdict

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tok = load_tokenizer(args.model)
    model = load_model(args.model).eval()
    registry = get_registry()
    verifiers: dict = {}

    def score(text: str, row: dict) -> float:
        name = row.get("verifier", args.verifier)
        if name not in verifiers:
            verifiers[name] = instantiate_verifier(registry.get("verifiers", name), {}, registry)
        return Verdict.coerce(verifiers[name](text, row)).reward

    stops = stop_token_ids(tok)
    print(f"model: {args.model}; {args.k} samples per task at temperature {args.temperature}, top-p 1, "
          f"<= {args.max_new} new tokens")
    print(f"{'file':<28}{'tasks':>7}{'greedy':>9}{'sample@1':>10}{f'pass@{args.k}':>9}{'mixed groups':>14}")
    for path in args.data:
        with open(path) as fh:
            rows = [json.loads(line) for line, _ in zip(fh, range(args.limit))]
        prompts = [render_prompt(tok, r["prompt"]) for r in rows]
        greedy = [score(o["text"], r) >= 1.0 for o, r in zip(generate_greedy(model, tok, prompts, args.max_new), rows)]
        hits = []
        with torch.no_grad():
            for prompt, row in zip(prompts, rows):
                ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].repeat(args.k, 1)
                out = model.generate(ids, do_sample=True, temperature=args.temperature, top_p=1.0, top_k=0,
                                     max_new_tokens=args.max_new, eos_token_id=stops,
                                     pad_token_id=tok.pad_token_id)
                texts = tok.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
                hits.append(sum(score(t, row) >= 1.0 for t in texts))
        n = len(rows)
        print(f"{Path(path).name:<28}{n:>7}{sum(greedy) / n:>9.3f}{sum(hits) / (n * args.k):>10.3f}"
              f"{sum(h > 0 for h in hits) / n:>9.3f}{sum(0 < h < args.k for h in hits) / n:>14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
