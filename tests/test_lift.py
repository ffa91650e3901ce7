"""Lift estimates on simulated campaigns with a known true effect: the intervals cover it, and CUPED's
is narrower when pre-period spend predicts the outcome."""

from __future__ import annotations

import numpy as np
import pytest

from transforms.errors import SegflowError
from transforms.lift import GroupSums, estimate

TRUE_EFFECT = 12.0


def sums(x: np.ndarray, y: np.ndarray) -> GroupSums:
    return GroupSums(len(x), y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum())


def simulate(rng: np.random.Generator, predictive: bool, customers: int = 2_000) -> dict:
    """One campaign: spend before the export (x), after it (y), a 20% random holdout; contacted
    customers spend TRUE_EFFECT more. With `predictive`, y follows x as habits do."""
    x = rng.gamma(shape=2.0, scale=60.0, size=customers)
    noise = rng.normal(0.0, 40.0, size=customers)
    held_out = rng.random(customers) < 0.2
    y = (0.9 * x if predictive else rng.gamma(2.0, 60.0, size=customers)) + noise + TRUE_EFFECT * ~held_out
    return estimate(sums(x[~held_out], y[~held_out]), sums(x[held_out], y[held_out]))


@pytest.mark.parametrize("predictive", [True, False])
def test_both_intervals_cover_the_true_effect_in_at_least_90_percent_of_200_runs(predictive):
    rng = np.random.default_rng(20261207)
    runs = [simulate(rng, predictive) for _ in range(200)]
    for method in ("raw", "cuped"):
        covered = sum(low <= TRUE_EFFECT <= high for low, high in (r[method]["ci95"] for r in runs))
        assert covered >= 180, (method, covered)


def test_cuped_is_narrower_when_pre_period_spend_predicts_the_outcome():
    rng = np.random.default_rng(7)
    runs = [simulate(rng, predictive=True) for _ in range(200)]
    width = {m: np.mean([r[m]["ci95"][1] - r[m]["ci95"][0] for r in runs]) for m in ("raw", "cuped")}
    assert width["cuped"] < 0.6 * width["raw"], width
    unrelated = [simulate(rng, predictive=False) for _ in range(50)]
    ratio = np.mean(
        [
            (r["cuped"]["ci95"][1] - r["cuped"]["ci95"][0]) / (r["raw"]["ci95"][1] - r["raw"]["ci95"][0])
            for r in unrelated
        ]
    )
    assert 0.95 < ratio <= 1.0001, ratio  # nothing to explain: about the raw interval


def test_a_hand_checked_pair_of_groups():
    # contacted: x = (0, 10), y = (10, 30); holdout: x = (0, 10), y = (0, 20). theta = 2 pooled, both
    # groups have the same pre-period, so raw and CUPED agree on 10; y - 2x is (10, 10) and (0, 0).
    result = estimate(
        sums(np.array([0.0, 10.0]), np.array([10.0, 30.0])),
        sums(np.array([0.0, 10.0]), np.array([0.0, 20.0])),
    )
    assert result["raw"]["lift"] == pytest.approx(10.0)
    assert result["cuped"]["lift"] == pytest.approx(10.0) and result["cuped"]["theta"] == pytest.approx(2.0)
    assert result["cuped"]["ci95"] == pytest.approx([10.0, 10.0])  # the adjusted spend does not vary
    low, high = result["raw"]["ci95"]
    assert (high - low) / 2 == pytest.approx(1.959964 * (200 / 2 + 200 / 2) ** 0.5)
    with pytest.raises(SegflowError, match="the holdout group has 1 customer"):
        estimate(sums(np.array([0.0, 1.0]), np.array([0.0, 1.0])), sums(np.array([0.0]), np.array([0.0])))
