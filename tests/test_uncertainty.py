"""Calibrated intervals: a scale fitted on valid trajectories gives nominal coverage on test
trajectories drawn alike, widths in physical units, and the Gaussian's NLL and CRPS."""

import math

import numpy as np

from physrep.data.targets import ParamTargets
from physrep.eval.uncertainty import GaussianScale, interval_metrics


def _targets() -> ParamTargets:
    values = [{"Reynolds": r, "Schmidt": s} for r in (1e3, 1e4, 1e5) for s in (0.1, 0.5, 1.0)]
    return ParamTargets.fit(values)


def test_a_scale_fitted_on_valid_covers_test_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    sigma = np.array([0.3, 0.1])
    true_valid, true_test = rng.normal(size=(4000, 2)), rng.normal(size=(4000, 2))
    scale = GaussianScale.fit(true_valid + rng.normal(size=(4000, 2)) * sigma, true_valid)
    np.testing.assert_allclose(scale.sigma, sigma, rtol=0.05)
    pred = true_test + rng.normal(size=(4000, 2)) * sigma
    got = interval_metrics(pred, true_test, scale, _targets())
    assert abs(got["coverage_90"] - 0.9) < 0.02 and abs(got["coverage_50"] - 0.5) < 0.03
    # a Gaussian error's expected NLL and CRPS, per parameter, averaged
    nll = np.mean(0.5 + np.log(sigma) + 0.5 * math.log(2 * math.pi))
    crps = np.mean(sigma / math.sqrt(math.pi))
    assert abs(got["nll"] - nll) < 0.05 and abs(got["crps"] - crps) / crps < 0.05
    # an over-confident scale covers less, and NLL says it is worse
    tight = interval_metrics(pred, true_test, GaussianScale(sigma / 3), _targets())
    assert tight["coverage_90"] < 0.5 and tight["nll"] > got["nll"]


def test_widths_are_in_physical_units():
    targets = _targets()
    scale = GaussianScale(np.array([0.2, 0.2]))
    pred = targets.encode(np.array([[1e4, 0.5]]))
    got = interval_metrics(pred, pred, scale, targets)
    lo, hi = scale.interval(pred, 0.9)
    expected = targets.decode(hi) - targets.decode(lo)
    assert math.isclose(got["width_90_Reynolds"], expected[0, 0])
    assert math.isclose(got["width_90_Schmidt"], expected[0, 1])
    assert got["width_90_Reynolds"] > 1000 and got["width_50_Schmidt"] < got["width_90_Schmidt"]
    assert got["coverage_50"] == 1.0  # the truth sits at the centre
