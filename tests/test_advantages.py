"""Advantage estimators against hand-computed values, and their registration through the hook."""
from __future__ import annotations

import math

import pytest
import torch

from raylign.engine.plugins import build_registry
from raylign.plugins import advantages
from raylign.plugins.advantages import dr_grpo, grpo, reinforce_pp, rloo

T = torch.tensor


def close(actual, expected, tol=1e-5):
    torch.testing.assert_close(actual, T(expected, dtype=torch.float32), atol=tol, rtol=0)


# rewards [[1, 0, 0, 1]]: mean 0.5, deviations ±0.5.
#   population std (divide by G=4) = 0.5            -> ±1
#   unbiased std (divide by G-1=3) = sqrt(1/3)      -> ±0.5·sqrt(3) = ±0.8660254
# rewards [[3, 1]]: mean 2, unbiased std = sqrt((1 + 1) / 1) = sqrt(2) -> ±1/sqrt(2)
@pytest.mark.parametrize("rewards, options, expected", [
    ([[1, 0, 0, 1]], {"unbiased": False}, [[1, -1, -1, 1]]),
    ([[1, 0, 0, 1]], {}, [[0.8660254, -0.8660254, -0.8660254, 0.8660254]]),
    ([[3, 1]], {}, [[0.7071068, -0.7071068]]),
    ([[1, 0, 0, 1]], {"std_normalize": False}, [[0.5, -0.5, -0.5, 0.5]]),
    # each group is normalized on its own
    ([[1, 0, 0, 1], [0, 0, 0, 4]], {"unbiased": False}, [[1, -1, -1, 1], [-1 / math.sqrt(3)] * 3 + [math.sqrt(3)]]),
])
def test_grpo(rewards, options, expected):
    close(grpo(T(rewards, dtype=torch.float32), **options), expected)


@pytest.mark.parametrize("unbiased", [True, False])
def test_grpo_zero_variance_group_is_zero_not_nan(unbiased):
    adv = grpo(T([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]]), unbiased=unbiased)
    assert not torch.isnan(adv).any()
    close(adv[:2], [[0, 0, 0, 0], [0, 0, 0, 0]])
    # a group of one sample has nothing to compare against
    close(grpo(T([[3.0], [5.0]]), unbiased=unbiased), [[0], [0]])


def test_dr_grpo():
    close(dr_grpo(T([[1.0, 0, 0, 1], [2, 4, 6, 8], [7, 7, 7, 7]])),
          [[0.5, -0.5, -0.5, 0.5], [-3, -1, 1, 3], [0, 0, 0, 0]])


def test_rloo():
    # r_i - mean of the other G-1: 1 - (0+0+1)/3 = 2/3, 0 - (1+0+1)/3 = -2/3
    close(rloo(T([[1.0, 0, 0, 1]])), [[2 / 3, -2 / 3, -2 / 3, 2 / 3]])
    # [1, 2, 3]: 1 - 2.5, 2 - 2, 3 - 1.5
    close(rloo(T([[1.0, 2, 3]])), [[-1.5, 0, 1.5]])
    close(rloo(T([[4.0, 4, 4]])), [[0, 0, 0]])
    close(rloo(T([[4.0]])), [[0]])


def test_reinforce_pp_normalizes_over_the_whole_batch():
    # group-centered: [[.5, -.5, -.5, .5], [.25, .25, .25, -.75]]; batch mean 0;
    # population variance over the 8 samples: (4·0.25 + 3·0.0625 + 0.5625) / 8 = 0.21875
    s = math.sqrt(0.21875)  # 0.4677072
    close(reinforce_pp(T([[1.0, 0, 0, 1], [1, 1, 1, 0]])),
          [[0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s], [0.25 / s, 0.25 / s, 0.25 / s, -0.75 / s]])
    # unbiased: variance 1.75 / 7 = 0.25 -> std 0.5
    close(reinforce_pp(T([[1.0, 0, 0, 1], [1, 1, 1, 0]]), unbiased=True),
          [[1, -1, -1, 1], [0.5, 0.5, 0.5, -1.5]])
    # a zero-variance group keeps 0 but still counts in the batch std: centered [[.5, -.5], [0, 0]],
    # variance (0.25 + 0.25) / 4 = 0.125 -> std 1/(2·sqrt(2)) -> ±sqrt(2)
    close(reinforce_pp(T([[1.0, 0], [3, 3]])), [[math.sqrt(2), -math.sqrt(2)], [0, 0]])
    all_equal = reinforce_pp(T([[2.0, 2], [3, 3]]))
    assert not torch.isnan(all_equal).any()
    close(all_equal, [[0, 0], [0, 0]])


def test_output_shape_and_dtype_follow_rewards():
    r = torch.randint(0, 2, (5, 8)).to(torch.int64)
    for fn in (grpo, dr_grpo, rloo, reinforce_pp):
        out = fn(r)
        assert out.shape == (5, 8) and out.dtype == torch.float32


def test_bad_input_fails_clearly():
    with pytest.raises(ValueError, match="N_groups, G"):
        grpo(T([1.0, 0.0]))
    with pytest.raises(TypeError):
        grpo(T([[1.0, 0.0]]), std_normalise=False)  # misspelled option


def test_registered_through_the_hook():
    reg = build_registry(entry_points=False, extra_plugins=[advantages])
    assert reg.names("advantage_estimators") == ["dr_grpo", "grpo", "reinforce_pp", "rloo"]
    assert reg.get("advantage_estimators", "grpo") is grpo
    entry = reg.entries["advantage_estimators"]["rloo"]
    assert entry.plugin and entry.package == "<local>"
    close(reg.get("advantage_estimators", "rloo")(T([[1.0, 0, 0, 1]])), [[2 / 3, -2 / 3, -2 / 3, 2 / 3]])
