"""Calibrated intervals: split-conformal half-widths from valid trajectories cover test
trajectories drawn alike at the nominal rate, even for heavy-tailed errors; widths are in
physical units; NLL and CRPS are the Gaussian's."""

import math

import numpy as np

from physrep.data.targets import ParamTargets
from physrep.eval.uncertainty import TrajectoryErrors, interval_metrics


def _targets() -> ParamTargets:
    values = [{"Reynolds": r, "Schmidt": s} for r in (1e3, 1e4, 1e5) for s in (0.1, 0.5, 1.0)]
    return ParamTargets.fit(values)


def test_conformal_intervals_cover_at_the_nominal_rate_for_heavy_tailed_errors():
    rng = np.random.default_rng(0)
    scale = np.array([0.3, 0.1])
    true_valid, true_test = rng.normal(size=(4000, 2)), rng.normal(size=(4000, 2))
    noise = lambda: rng.standard_t(2, size=(4000, 2)) * scale  # noqa: E731
    errors = TrajectoryErrors.fit(true_valid + noise(), true_valid)
    got = interval_metrics(true_test + noise(), true_test, errors, _targets())
    assert abs(got["coverage_90"] - 0.9) < 0.02 and abs(got["coverage_50"] - 0.5) < 0.03


def test_a_few_valid_trajectories_give_the_conformal_order_statistic():
    errors = TrajectoryErrors.fit(np.arange(1.0, 13.0)[:, None], np.zeros((12, 1)))
    assert errors.half_width(0.5)[0] == 7.0  # ceil(13 * 0.5) = 7th smallest of 12
    assert errors.half_width(0.9)[0] == 12.0  # ceil(13 * 0.9) = 12th: the largest


def test_nll_and_crps_are_those_of_the_gaussian_with_the_valid_rms_error():
    rng = np.random.default_rng(1)
    sigma = np.array([0.3, 0.1])
    true = rng.normal(size=(20000, 2))
    errors = TrajectoryErrors.fit(true + rng.normal(size=true.shape) * sigma, true)
    np.testing.assert_allclose(errors.sigma, sigma, rtol=0.03)
    got = interval_metrics(true + rng.normal(size=true.shape) * sigma, true, errors, _targets())
    nll = np.mean(0.5 + np.log(sigma) + 0.5 * math.log(2 * math.pi))
    crps = np.mean(sigma / math.sqrt(math.pi))  # a well-specified Gaussian's expected CRPS
    assert abs(got["nll"] - nll) < 0.05 and abs(got["crps"] - crps) / crps < 0.05


def test_widths_are_in_physical_units():
    targets = _targets()
    errors = TrajectoryErrors(np.array([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]))
    pred = targets.encode(np.array([[1e4, 0.5]]))
    got = interval_metrics(pred, pred, errors, targets)
    lo, hi = errors.interval(pred, 0.9)
    expected = targets.decode(hi) - targets.decode(lo)
    assert math.isclose(got["width_90_Reynolds"], expected[0, 0])
    assert math.isclose(got["width_90_Schmidt"], expected[0, 1])
    assert got["width_90_Reynolds"] > 1000 and got["width_50_Schmidt"] < got["width_90_Schmidt"]
    assert got["coverage_50"] == 1.0  # the truth sits at the centre
