"""RLHF math against hand-computed values: Bradley–Terry, GAE (gamma, lambda, masks), the clipped value loss, the
adaptive KL controller, reward shaping, whitening, explained variance and dual-clip PPO; and the reward read at the
last real token of a reply under left and right padding."""
from __future__ import annotations

import math

import pytest
import torch

from raylign.plugins import ppo_math
from raylign.plugins.reward_model import bradley_terry, bradley_terry_loss, pair_batch, encode_pair, read_rewards
from raylign.engine.types import TrainBatch


def logsig(x: float) -> float:
    return -math.log1p(math.exp(-x))


# ---------------------------------------------------------------------------------------------- Bradley–Terry

def test_bradley_terry_hand_values():
    c, r = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert bradley_terry(c, r).tolist() == pytest.approx([-logsig(1.0), -logsig(-1.0)], abs=1e-6)
    assert bradley_terry(c, r, 0.5).tolist() == pytest.approx([-logsig(0.5), -logsig(-1.5)], abs=1e-6)
    # centering adds center_coef * (r_c + r_r)^2 per pair
    centered = bradley_terry(torch.tensor([2.0]), torch.tensor([1.0]), 0.0, 0.1)
    assert centered.item() == pytest.approx(-logsig(1.0) + 0.1 * 9.0, abs=1e-6)


def test_bradley_terry_loss_reads_the_marked_position_and_reports_pair_metrics():
    # two pairs; rows 0/1 are pair 0 (chosen, rejected), rows 2/3 pair 1; the read mask picks one position per row
    values = torch.tensor([[9.0, 2.0, 9.0], [9.0, 9.0, 1.0], [0.5, 9.0, 9.0], [9.0, 1.5, 9.0]])
    read = torch.tensor([[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=torch.float32)
    batch = TrainBatch(torch.zeros(4, 3, dtype=torch.long), torch.ones(4, 3, dtype=torch.long), read,
                       extras={"margin": torch.tensor([0.0, 0.0, 0.25, 0.25])})
    loss, m = bradley_terry_loss(values, batch)
    expected = [-logsig(2.0 - 1.0), -logsig(0.5 - 1.5 - 0.25)]
    assert loss.item() == pytest.approx(sum(expected) / 2, abs=1e-6)
    assert m["accuracy"] == 0.5
    assert m["reward_chosen"] == pytest.approx(1.25) and m["reward_rejected"] == pytest.approx(1.25)
    assert m["margin"] == pytest.approx(0.0)


def test_reward_is_read_at_the_reply_end_under_left_and_right_padding(tiny_model_dir, tmp_path):
    """The reward is the head's value at the reply's end-of-turn token whatever the padding, and transformers'
    own sequence-classification pooling of the saved directory agrees with it."""
    from transformers import AutoModelForSequenceClassification

    from raylign.engine.modeling import load_tokenizer, load_value_model, save_model_dir, value_forward
    from raylign.engine.ops import pad_sequences

    tok = load_tokenizer(tiny_model_dir)
    model = load_value_model(tiny_model_dir, seed=3).eval()
    rows = [{"prompt": "What is an LLM?", "chosen": "An LLM is a large language model.", "rejected": "The fox."},
            {"prompt": "What is 12+30?", "chosen": "42.", "rejected": "The quick brown fox jumps over the lazy dog."}]
    pairs = [encode_pair(tok, r, f"row {i}", "", 256) for i, r in enumerate(rows)]
    seqs = [s for p in pairs for s in (p.chosen, p.rejected)]
    ends = [e for p in pairs for e in p.read]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert all(s[e] == im_end for s, e in zip(seqs, ends))  # the end-of-turn marker, not the newline after it
    assert all(e < len(s) - 1 for s, e in zip(seqs, ends))  # ...which is not the sequence's last token

    with torch.no_grad():
        alone = [value_forward(model, torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long))[0, e].item()
                 for s, e in zip(seqs, ends)]
        # right padding: the batch the stage builds
        [mb] = pair_batch(pairs, tok.pad_token_id, micro_pairs=8)
        right = read_rewards(value_forward(model, mb.input_ids, mb.attention_mask), mb.loss_mask)
        # left padding: the same sequences, pads in front, read positions shifted
        T = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), T), tok.pad_token_id)
        attn = torch.zeros((len(seqs), T), dtype=torch.long)
        read = torch.zeros((len(seqs), T))
        for i, (s, e) in enumerate(zip(seqs, ends)):
            ids[i, T - len(s):] = torch.tensor(s)
            attn[i, T - len(s):] = 1
            read[i, T - len(s) + e] = 1.0
        left = read_rewards(value_forward(model, ids, attn), read)
    assert right.tolist() == pytest.approx(alone, abs=1e-4)
    assert left.tolist() == pytest.approx(alone, abs=1e-4)
    # a pad read instead (the known bug: the last position of a right-padded row) gives other numbers
    wrong = value_forward(model, mb.input_ids, mb.attention_mask)[:, -1]
    assert any(abs(w - a) > 1e-3 for w, a in zip(wrong.tolist(), alone))

    # transformers loads the saved dir as a one-label classifier and pools the same position when the reply is
    # cut at its end-of-turn token (its pooling takes the last non-pad token)
    saved = save_model_dir(model, tok, tmp_path / "rm")
    hf = AutoModelForSequenceClassification.from_pretrained(str(saved)).eval()
    assert hf.config.num_labels == 1 and hf.config.pad_token_id == tok.pad_token_id
    cut, attn_cut = pad_sequences([s[: e + 1] for s, e in zip(seqs, ends)], tok.pad_token_id)
    with torch.no_grad():
        pooled = hf(input_ids=cut, attention_mask=attn_cut).logits[:, 0]
    assert pooled.tolist() == pytest.approx(alone, abs=1e-4)


# ---------------------------------------------------------------------------------------------- reward model: pack

RM_ROWS = [  # replies of very different lengths: every micro-batch holds real padding
    {"prompt": "What is 12+30?", "chosen": "42.", "rejected": "The quick brown fox jumps over the lazy dog. " * 4},
    {"prompt": "What is an LLM?", "chosen": "An LLM is a large language model that predicts the next token.",
     "rejected": "a + b", "margin": 0.5},
    {"prompt": "Hi?", "chosen": "The lazy dog sits.", "rejected": "def add(a, b):\n    return a + b\n" * 3},
    {"prompt": "What is 12+30? " * 3, "chosen": "12+30 is 42.", "rejected": "The fox."},
    {"prompt": "Say a word.", "chosen": "Dog.", "rejected": "An LLM predicts the next token. " * 2},
]


def test_reward_model_pack_modes_read_the_same_rewards_and_loss(tiny_model_dir):
    """The reward_model stage's path with pack = sort (pairs ordered by length, micro-batches cut to their real
    columns) and pack (packed rows) against none, in process: each reply's reward read through the learner's
    aligned (values, batch) equals a forward of that sequence alone (its reply-end token, wherever the cut or
    the packing put it); one optimizer step's loss, accuracy and rewards, and then the held-out eval
    (``RewardModelStage.evaluate``: loss, accuracies, reward means and std) agree within a small tolerance."""
    from raylign.engine.config import build_config
    from raylign.engine.learner import Learner, LearnerSpec
    from raylign.engine.modeling import load_tokenizer, value_forward
    from raylign.engine.optim import OptimConfig
    from raylign.engine.plugins import build_registry
    from raylign.plugins.reward_model import RewardModelStage

    reg = build_registry()
    tok = load_tokenizer(tiny_model_dir)
    pairs = [encode_pair(tok, r, f"row {i}", "", 256) for i, r in enumerate(RM_ROWS)]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    options = {"center_coef": 0.1}
    threads = torch.get_num_threads()
    out = {}
    try:
        for mode in ("none", "sort", "pack"):
            cfg = build_config({"run": {"pipeline": ["reward_model"], "base_model": str(tiny_model_dir)},
                                "reward_model": {"data": ["x.jsonl"], "micro_batch_size": 2, "pack": mode}},
                               reg).stages[0].config
            spec = LearnerSpec(model_dir=str(tiny_model_dir), total_steps=10, seed=0, device="cpu",
                               torch_threads=1, head="value", pack=mode,
                               optim=OptimConfig(lr=1e-2, warmup_steps=0, schedule="constant", weight_decay=0.0))
            learner = Learner(spec, registry=reg)
            mbs = pair_batch(pairs, tok.pad_token_id, cfg.micro_batch_size, by_length=cfg.pack == "sort")
            assert all(mb.attention_mask.sum() < mb.attention_mask.numel() for mb in mbs)  # real padding
            if mode != "none":
                with torch.no_grad():  # the read position, through the batch the learner's forward returns
                    learner.model.eval()
                    widths = []
                    for mb in mbs:
                        values, used = learner._forward(mb)
                        widths.append((used.input_ids.shape[1], mb.input_ids.shape[1]))
                        rows = zip(mb.input_ids, mb.attention_mask, mb.loss_mask, read_rewards(values, used.loss_mask))
                        for ids, attn, read, got in rows:  # right-padded: column = index in the sequence
                            seq = ids[attn.bool()].view(1, -1)
                            alone = value_forward(learner.model, seq, torch.ones_like(seq))[0, int(read.argmax())]
                            assert float(got) == pytest.approx(float(alone), abs=1e-4)
                            assert int(seq[0, int(read.argmax())]) == im_end  # the reply's end-of-turn token
                    assert any(cut < whole for cut, whole in widths)  # the learner did cut columns
                    learner.model.train()
            step = learner.train_step(mbs, "bradley_terry", options)
            ev = RewardModelStage.evaluate(learner, pair_batch(pairs, tok.pad_token_id, 2), pairs, options)
            out[mode] = {"step": step, "eval": ev}
    finally:
        torch.set_num_threads(threads)
    ref = out["none"]
    assert ref["eval"]["eval_loss"] != pytest.approx(ref["step"]["loss"], abs=1e-4)  # the step moved the model
    for mode in ("sort", "pack"):
        for part in ("step", "eval"):
            assert out[mode][part].keys() == ref[part].keys()
            for k, v in ref[part].items():
                if k not in ("learner_seconds", "lr"):
                    assert out[mode][part][k] == pytest.approx(v, rel=1e-4, abs=1e-4), (mode, part, k)


# ---------------------------------------------------------------------------------------------- GAE and friends

def test_gae_hand_values_with_prompt_and_padding_masks():
    # row 0: prompt at position 0, reply at 1..3; row 1: reply at 1..2, then padding (must not leak)
    values = torch.tensor([[9.0, 0.5, 0.6, 0.7], [9.0, 0.2, 0.4, 9.0]])
    rewards = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 2.0, 5.0]])
    mask = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 0]], dtype=torch.float32)
    adv, ret = ppo_math.gae(rewards, values, mask, gamma=1.0, lam=0.95)
    # row 0: d3 = 1 - .7 = .3; d2 = .7 - .6 = .1; d1 = .6 - .5 = .1; A3=.3, A2=.1+.95*.3, A1=.1+.95*A2
    a2 = 0.1 + 0.95 * 0.3
    assert adv[0].tolist() == pytest.approx([0.0, 0.1 + 0.95 * a2, a2, 0.3], abs=1e-6)
    assert ret[0].tolist() == pytest.approx([0.0, 0.5 + 0.1 + 0.95 * a2, 0.6 + a2, 1.0], abs=1e-6)
    # row 1 ends at position 2: d2 = 2 - .4 = 1.6 (no value after the end); d1 = .4 - .2 = .2
    assert adv[1].tolist() == pytest.approx([0.0, 0.2 + 0.95 * 1.6, 1.6, 0.0], abs=1e-6)
    # gamma and lambda both matter
    adv2, _ = ppo_math.gae(rewards[:1], values[:1], mask[:1], gamma=0.9, lam=0.5)
    a2 = (0.9 * 0.7 - 0.6) + 0.45 * 0.3
    assert adv2[0].tolist() == pytest.approx([0.0, (0.9 * 0.6 - 0.5) + 0.45 * a2, a2, 0.3], abs=1e-6)
    # lambda = 1, gamma = 1: the advantage is the return-to-go minus the value
    adv3, _ = ppo_math.gae(rewards[:1], values[:1], mask[:1], gamma=1.0, lam=1.0)
    assert adv3[0, 1:].tolist() == pytest.approx([1 - 0.5, 1 - 0.6, 1 - 0.7], abs=1e-6)


def test_token_rewards_put_the_score_on_the_last_reply_token():
    mask = torch.tensor([[0, 1, 1, 1], [0, 1, 0, 0]], dtype=torch.float32)
    kl = torch.tensor([[0.0, 0.1, 0.2, 0.3], [0.0, 0.4, 9.0, 9.0]]) * mask
    r = ppo_math.token_rewards(torch.tensor([2.0, -1.0]), kl, mask, kl_coef=0.5)
    assert r[0].tolist() == pytest.approx([0.0, -0.05, -0.1, -0.15 + 2.0])
    assert r[1].tolist() == pytest.approx([0.0, -0.2 - 1.0, 0.0, 0.0])


def test_state_values_shift_by_one():
    raw = torch.tensor([[1.0, 2.0, 3.0]])
    assert ppo_math.state_values(raw).tolist() == [[0.0, 1.0, 2.0]]


def test_clipped_value_loss_hand_values():
    v, old, ret = torch.tensor([1.5, 0.9]), torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])
    loss, clipped = ppo_math.clipped_value_loss(v, old, ret, clip=0.2)
    # 1.5 clipped to 1.2: max((1.5-2)^2, (1.2-2)^2) = .64; 0.9 within the clip: (0.9)^2 both ways
    assert loss.tolist() == pytest.approx([0.5 * 0.64, 0.5 * 0.81])
    assert clipped.tolist() == [1.0, 0.0]
    plain, none = ppo_math.clipped_value_loss(v, old, ret, clip=None)
    assert plain.tolist() == pytest.approx([0.5 * 0.25, 0.5 * 0.81]) and none.sum() == 0


def test_adaptive_kl_controller():
    fixed = ppo_math.KLController(0.1)
    assert fixed.update(100.0, 64) == 0.1
    ctl = ppo_math.KLController(0.1, target=6.0, horizon=10_000)
    assert ctl.update(12.0, 100) == pytest.approx(0.1 * (1 + 0.2 * 100 / 10_000))  # error clipped to +0.2
    c = ctl.coef
    assert ctl.update(6.6, 100) == pytest.approx(c * (1 + 0.1 * 100 / 10_000))  # 6.6 / 6 - 1 = 0.1
    c = ctl.coef
    assert ctl.update(0.0, 1000) == pytest.approx(c * (1 - 0.2 * 1000 / 10_000))  # clipped to -0.2


def test_whiten_and_explained_variance():
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    w = ppo_math.whiten(x, mask)
    assert w[0, 0] == 0.0
    assert w[0, 1:].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert (w[0, 1:] ** 2).mean().item() == pytest.approx(1.0, abs=1e-4)
    target = torch.tensor([[9.0, 1.0, 2.0, 3.0]])
    assert ppo_math.explained_variance(target, target, mask) == pytest.approx(1.0)
    assert ppo_math.explained_variance(torch.full_like(target, 2.0), target, mask) == pytest.approx(0.0)


def test_dual_clip_caps_negative_advantage_tokens():
    from raylign.plugins.policy_losses import policy_gradient_loss

    # one reply token (position 1) whose logprob is log .5 under the logits; the old policy gave it .1: ratio 5
    logits = torch.zeros(1, 2, 2)
    ids = torch.tensor([[0, 1]])
    batch = TrainBatch(ids, torch.ones_like(ids), torch.tensor([[0.0, 1.0]]),
                       extras={"advantages": torch.tensor([[0.0, -1.0]]),
                               "old_logprobs": torch.tensor([[0.0, math.log(0.1)]])})
    plain, _ = policy_gradient_loss(logits, batch, clip_low=0.2, clip_high=0.2)
    assert plain.item() == pytest.approx(5.0, rel=1e-5)  # max(-A*5, -A*1.2)
    capped, m = policy_gradient_loss(logits, batch, clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    assert capped.item() == pytest.approx(3.0, rel=1e-5) and m["dual_clip_frac"] == 1.0
    # a positive advantage is never dual-clipped
    batch.extras["advantages"] = torch.tensor([[0.0, 1.0]])
    pos, m = policy_gradient_loss(logits, batch, clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    assert pos.item() == pytest.approx(-1.2, rel=1e-5) and m["dual_clip_frac"] == 0.0


def test_value_loss_through_the_registered_loss():
    from raylign.plugins.ppo import value_clipped_loss

    raw = torch.tensor([[0.0, 1.5, 0.9]])  # state values are raw shifted right: [0, 0, 1.5]
    batch = TrainBatch(torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.long),
                       torch.tensor([[0.0, 0.0, 1.0]]),
                       extras={"old_values": torch.tensor([[0.0, 0.0, 1.0]]), "returns": torch.tensor([[0.0, 0.0, 2.0]])})
    loss, m = value_clipped_loss(raw, batch, clip=0.2)
    assert loss.item() == pytest.approx(0.5 * 0.64) and m["value_clip_frac"] == 1.0


class RecordingLearner:
    """A policy or critic learner as ``PPOStage.update`` calls it (``LearnerHandle.train_step``), recording the
    calls and answering fixed numbers."""

    def __init__(self, out):
        self.out, self.calls = out, 0

    def train_step(self, micro_batches, loss, options):
        self.calls += 1
        return dict(self.out, loss=float(self.calls))


def test_ppo_update_averages_its_updates_but_adds_up_the_learner_seconds():
    from raylign.engine.types import SequenceBatch
    from raylign.plugins.ppo import PPOConfig, PPOStage

    n = 4
    batch = SequenceBatch(torch.ones(n, 3, dtype=torch.long), torch.ones(n, 3, dtype=torch.long), torch.ones(n, 3),
                          {k: torch.zeros(n, 3) for k in ("advantages", "old_logprobs", "ref_logprobs", "returns",
                                                          "old_values")})
    policy = RecordingLearner({"grad_norm": 1.0, "learner_seconds": 2.0, "tokens": 3.0, "step_tokens": 3.0})
    critic = RecordingLearner({"grad_norm": 4.0, "learner_seconds": 9.0, "value_clip_frac": 0.5})
    cfg = PPOConfig(epochs=2, mini_batches=2, micro_batch_size=2)
    m = PPOStage().update(policy, critic, batch, cfg, kl_coef=0.1, step=1, seed=0, train_policy=True)
    assert policy.calls == critic.calls == 4  # 2 epochs x 2 mini-batches
    assert m["learner_seconds"] == 8.0  # the policy's 4 updates, in total
    assert m["policy_loss"] == m["value_loss"] == pytest.approx(2.5) and m["value_clip_frac"] == 0.5  # means
