"""Preference pairs with a known ground truth (reward_model), and prompts with references for PPO.

Every answer is built from a concept's clean answer (concepts.Concept.answer(), the reference) in some STYLES:
clean, rude (a rude opener), rambling (a filler tail), repetitive (the definition twice), wrong (another concept's
definition after this concept's subject), truncated (the definition cut short: shorter, and incomplete), and
their combinations. The gold judge (the style_judge verifier, raylign.verifiers.style.StyleJudge with its
defaults) scores each; a pair is two answers to the same prompt with different scores, the higher one chosen.
Length does not predict the label: half the training pairs have the longer answer (in characters) chosen
(clean over truncated, rude over wrong-and-short, ...), half the shorter one (clean over rambling, ...).

Prompts follow sft.py's split: training files ask the train phrasings of the concepts SFT trains on; eval files
ask the held-out phrasings of those concepts and any phrasing of the concepts SFT holds out (sft.held_out).
  prefs_train.jsonl  {"prompt", "chosen", "rejected", "label_flipped"}: exactly FLIP_SHARE of the rows are
                     swapped (label noise, label_flipped true); CHAT_SHARE of them in chat-message form. Each
                     pair has a wrong definition and a cut-off point of its own (``varied``), never a held-out
                     concept's definition, so a reward model must match a definition to its subject
  prefs_eval.jsonl   {"prompt", "chosen", "rejected", "subset"}: never flipped; subset "longer_worse" when the
                     rejected answer is the longer one, else "longer_better" (half each)
  rlhf_train.jsonl   {"prompt", "answer"}: PPO prompts (train phrasings), answer = the reference for the judge
  rlhf_eval.jsonl    {"prompt", "answer"}: held-out phrasings of trained concepts, in no other file here
"""
from __future__ import annotations

import itertools
import random

import sft
from concepts import DEFINITION_QUESTIONS_EVAL, DEFINITION_QUESTIONS_TRAIN, Concept, definition_question
from raylign.verifiers.style import StyleJudge

N_TRAIN, N_EVAL = 4000, 400          # preference pairs
N_RLHF_TRAIN, N_RLHF_EVAL = 600, 120  # PPO prompts
FLIP_SHARE = 0.10                    # prefs_train rows with chosen and rejected swapped
CHAT_SHARE = 0.20                    # prefs_train rows as chat messages

# sft.py's flaws first (what the SFT model says), then others, so the reward model learns the kind, not a string.
RUDE_OPENERS = sft.RUDE_OPENERS + ["Obviously, ", "Duh. ", "Whatever. ", "As everyone knows, "]
FILLER_TAILS = sft.FILLER_TAILS + ["Let me know if you have any other questions.",
                                   "There is much more I could say about it, but that is the main idea.",
                                   "I could talk about this all day."]
STYLES = ["clean", "rude", "ramble", "repeat", "rude+ramble", "rude+repeat", "ramble+repeat", "rude+ramble+repeat",
          "wrong", "wrong+rude", "wrong+ramble", "truncated", "truncated+rude", "truncated+ramble"]


def wrong_definition(rng: random.Random, c: Concept, others: list[Concept], judge: StyleJudge) -> str:
    """Another concept's definition, one that the judge finds wrong for c (every other one is, today)."""
    for o in rng.sample(others, len(others)):
        if not judge(f"{c.A} is {o.definition}.", {"answer": c.answer()}).details["correct"]:
            return o.definition
    raise ValueError(f"no definition is wrong enough for {c.key}")


def cut_definition(c: Concept, ws: list[str], k: int, judge: StyleJudge) -> str | None:
    """The definition's first ``k`` words ``ws[:k]``, trailing stop words and punctuation dropped, if the judge
    finds that incomplete; else None."""
    cut = list(ws[:k])
    while len(cut) > 1 and cut[-1].lower().strip(",:;") in ("a", "an", "the", "of", "to", "and", "that", "or",
                                                          "by", "with", "such", "as", "for", "in", "on"):
        cut.pop()
    text = " ".join(cut).rstrip(",:;")
    return None if judge(f"{c.A} is {text}.", {"answer": c.answer()}).details["correct"] else text


def truncated_definition(c: Concept, judge: StyleJudge) -> str:
    """The first half of the definition's words (fewer if the judge still finds that complete), trailing
    punctuation and stop words dropped: "a large language model: a neural network trained"."""
    ws = c.definition.split()
    for k in range(max(1, len(ws) // 2), 0, -1):
        text = cut_definition(c, ws, k, judge)
        if text is not None:
            return text
    raise ValueError(f"cannot truncate {c.key}'s definition into an incomplete one")


def answer(c: Concept, style: str, opener: str, tail: str, wrong: str, short: str) -> str:
    """c's answer in a style ("rude+ramble", ...), with the given opener, filler tail and bad definitions."""
    kinds = set(style.split("+"))
    definition = wrong if "wrong" in kinds else short if "truncated" in kinds else c.definition
    body = Concept(c.key, c.name, c.a, definition, c.facts, c.category)
    first = sft.with_opener(opener, body) if "rude" in kinds else body.answer()
    return " ".join([first] + [body.answer()] * ("repeat" in kinds) + [tail] * ("ramble" in kinds))


class Pool:
    """One prompt's pairs of one length kind, drawn score pair by score pair: a draw takes a (chosen score,
    rejected score) group at random among those left, then a pair in it, so that the common middle scores
    do not crowd out clean-versus-one-flaw pairs."""

    def __init__(self, rng: random.Random, pairs: list[tuple[float, float, str, str, str, str]]):
        self.rng, self.groups = rng, {}
        for s_chosen, s_rejected, *pair in pairs:  # pair: chosen, rejected, the chosen's and rejected's style
            self.groups.setdefault((s_chosen, s_rejected), []).append(tuple(pair))
        for group in self.groups.values():
            rng.shuffle(group)

    def draw(self) -> tuple[str, str, str, str]:
        left = sorted(k for k, v in self.groups.items() if v)
        if not left:
            raise ValueError("a prompt ran out of pairs: lower N_TRAIN or add styles")
        key = self.rng.choice(left)
        return self.groups[key].pop()


def pair_pools(rng: random.Random, c: Concept, others: list[Concept], judge: StyleJudge) -> tuple[Pool, Pool]:
    """(pairs with the longer answer chosen, pairs with the shorter one chosen) for one prompt about c: one
    answer per style (one opener, tail, wrong and truncated definition for all of them, so that two styles
    differ only by their flaws), every two with different gold scores and lengths, the higher-scored chosen.
    Each pool also keeps the opener and tail (``Pool.opener``, ``Pool.tail``) for ``varied``."""
    opener, tail = rng.choice(RUDE_OPENERS), rng.choice(FILLER_TAILS)
    wrong, short = wrong_definition(rng, c, others, judge), truncated_definition(c, judge)
    answers = [(s, answer(c, s, opener, tail, wrong, short)) for s in STYLES]
    scored = [(judge(a, {"answer": c.answer()}).reward, a, s) for s, a in answers]
    longer, shorter = [], []
    for (s1, a1, t1), (s2, a2, t2) in itertools.combinations(scored, 2):
        if s1 == s2 or len(a1) == len(a2):
            continue
        (sc, chosen, tc), (sr, rejected, tr) = ((s2, a2, t2), (s1, a1, t1)) if s2 > s1 else \
            ((s1, a1, t1), (s2, a2, t2))
        (longer if len(chosen) > len(rejected) else shorter).append((sc, sr, chosen, rejected, tc, tr))
    pools = Pool(rng, longer), Pool(rng, shorter)
    for pool in pools:
        pool.opener, pool.tail = opener, tail
    return pools


def prompts(seed: int, concepts: list[Concept]):
    """(train prompts, eval prompts of trained concepts, eval prompts of held-out concepts): (question, concept)."""
    held = {c.key for c in sft.held_out(seed, concepts)}
    train = [(definition_question(t, c), c) for c in concepts if c.key not in held for t in DEFINITION_QUESTIONS_TRAIN]
    known = [(definition_question(t, c), c) for c in concepts if c.key not in held for t in DEFINITION_QUESTIONS_EVAL]
    unknown = [(definition_question(t, c), c) for c in concepts if c.key in held
               for t in DEFINITION_QUESTIONS_TRAIN + DEFINITION_QUESTIONS_EVAL]
    return train, known, unknown


def pairs(rng: random.Random, asked: list[tuple[str, Concept]], concepts: list[Concept], n: int,
          judge: StyleJudge, vary: random.Random | None = None,
          wrong_from: list[Concept] | None = None) -> list[tuple[str, str, str]]:
    """n (prompt, chosen, rejected): prompts in turn, alternately a longer-chosen and a shorter-chosen pair
    (the alternation shifts on each pass, so every prompt gets both kinds). With ``vary`` (an rng of its own,
    so that ``rng`` draws exactly what it draws without it), each pair is rewritten by ``varied`` with wrong
    definitions taken from ``wrong_from``."""
    pools = {}
    for q, c in asked:
        pools[q] = pair_pools(rng, c, [o for o in concepts if o.key != c.key], judge)
    out = []
    for i in range(n):
        q, c = asked[i % len(asked)]
        pool = pools[q][(i + i // len(asked)) % 2]
        chosen, rejected, style_c, style_r = pool.draw()
        if vary is not None:
            others = [o for o in wrong_from if o.key != c.key]
            chosen, rejected = varied(vary, c, (style_c, style_r), pool.opener, pool.tail, others, judge,
                                      (chosen, rejected))
        out.append((q, chosen, rejected))
    return out


def random_truncation(rng: random.Random, c: Concept, judge: StyleJudge) -> str:
    """Like truncated_definition, but cut after a random number of words (a quarter to a half of them)."""
    ws = c.definition.split()
    lo, hi = max(1, len(ws) // 4), max(1, len(ws) // 2)
    for k in rng.sample(range(lo, hi + 1), hi + 1 - lo):
        text = cut_definition(c, ws, k, judge)
        if text is not None:
            return text
    return truncated_definition(c, judge)


def varied(rng: random.Random, c: Concept, styles: tuple[str, str], opener: str, tail: str, others: list[Concept],
           judge: StyleJudge, pair: tuple[str, str], tries: int = 20) -> tuple[str, str]:
    """The pair with a wrong definition drawn for it alone (from ``others``) and a cut-off point of its own,
    so that the reward model sees many wrong definitions per subject instead of one per prompt and learns to
    match a definition to its subject rather than to remember which sentence was wrong. The gold judge still
    scores the chosen answer higher, and the longer answer is the same one; else the pair is kept as it was."""
    reference = {"answer": c.answer()}
    longer = len(pair[0]) > len(pair[1])
    for _ in range(tries):
        wrong, short = rng.choice(others).definition, random_truncation(rng, c, judge)
        if judge(f"{c.A} is {wrong}.", reference).details["correct"]:
            continue
        chosen, rejected = (answer(c, s, opener, tail, wrong, short) for s in styles)
        if judge(chosen, reference).reward > judge(rejected, reference).reward and \
                (len(chosen) > len(rejected)) == longer and len(chosen) != len(rejected):
            return chosen, rejected
    return pair


def build(seed: int, concepts: list[Concept]) -> dict[str, list[dict]]:
    """Every file's rows, by file name."""
    rng = random.Random(f"prefs-{seed}")
    judge = StyleJudge()
    train_prompts, known, unknown = prompts(seed, concepts)
    rng.shuffle(train_prompts)
    rng.shuffle(known)
    rlhf_eval, known = known[:N_RLHF_EVAL], known[N_RLHF_EVAL:]
    eval_prompts = known + unknown
    rng.shuffle(eval_prompts)
    rlhf_train = rng.sample(train_prompts, N_RLHF_TRAIN)

    train = []
    flipped = set(rng.sample(range(N_TRAIN), round(FLIP_SHARE * N_TRAIN)))
    chat = set(rng.sample(range(N_TRAIN), round(CHAT_SHARE * N_TRAIN)))
    held = {c.key for c in sft.held_out(seed, concepts)}
    trained = [c for c in concepts if c.key not in held]  # wrong definitions in training: never a held-out one
    drawn = pairs(rng, train_prompts, concepts, N_TRAIN, judge, random.Random(f"prefs-vary-{seed}"), trained)
    for i, (q, chosen, rejected) in enumerate(drawn):
        if i in flipped:
            chosen, rejected = rejected, chosen
        if i in chat:
            row = {"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": chosen}],
                   "rejected": [{"role": "assistant", "content": rejected}]}
        else:
            row = {"prompt": q, "chosen": chosen, "rejected": rejected}
        train.append({**row, "label_flipped": i in flipped})
    evals = [{"prompt": q, "chosen": chosen, "rejected": rejected,
              "subset": "longer_worse" if len(rejected) > len(chosen) else "longer_better"}
             for q, chosen, rejected in pairs(rng, eval_prompts[:N_EVAL], concepts, N_EVAL, judge)]
    return {
        "prefs_train.jsonl": train, "prefs_eval.jsonl": evals,
        "rlhf_train.jsonl": [{"prompt": q, "answer": c.answer()} for q, c in rlhf_train],
        "rlhf_eval.jsonl": [{"prompt": q, "answer": c.answer()} for q, c in rlhf_eval],
    }
