"""FD, KID and IS formulas against direct numpy / scipy computations on synthetic features."""

import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from score_sde import fid


def _features(rng, n, d, shift=0.0, scale=1.0):
  a = rng.normal(size=(d, d)) / np.sqrt(d)
  return shift + scale * rng.normal(size=(n, d)) @ a


def test_feature_statistics_are_mean_and_unbiased_covariance():
  x = _features(np.random.default_rng(0), 50, 4)
  mu, sigma = fid.feature_statistics(x)
  np.testing.assert_allclose(mu, x.mean(0))
  xc = x - x.mean(0)
  np.testing.assert_allclose(sigma, xc.T @ xc / 49)


def test_frechet_distance_matches_scipy_sqrtm():
  """FD = |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)), sqrtm from scipy."""
  rng = np.random.default_rng(1)
  mu1, s1 = fid.feature_statistics(_features(rng, 400, 16))
  mu2, s2 = fid.feature_statistics(_features(rng, 300, 16, shift=0.3, scale=1.5))
  want = (
    np.sum((mu1 - mu2) ** 2)
    + np.trace(s1)
    + np.trace(s2)
    - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
  )
  assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-9)


def test_frechet_distance_closed_forms():
  """Same Gaussian: 0; isotropic: |dmu|^2 + d (s1 - s2)^2 (standard deviations s1, s2); a
  singular covariance (fewer samples than dimensions) stays finite and matches scipy."""
  rng = np.random.default_rng(2)
  mu1, s1 = fid.feature_statistics(_features(rng, 200, 8))
  assert abs(fid.frechet_distance(mu1, s1, mu1, s1)) < 1e-9
  d, dmu = 5, np.arange(5.0)
  got = fid.frechet_distance(np.zeros(d), 4 * np.eye(d), dmu, 9 * np.eye(d))
  assert got == pytest.approx(dmu @ dmu + d * (2 - 3) ** 2, rel=1e-12)
  mu2, s2 = fid.feature_statistics(_features(rng, 5, 8))  # rank 4 < 8
  want = (
    np.sum((mu1 - mu2) ** 2)
    + np.trace(s1)
    + np.trace(s2)
    - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
  )
  assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-6)


def test_fid_warns_below_recommended_samples():
  rng = np.random.default_rng(3)
  mu, s = fid.feature_statistics(_features(rng, 100, 4))
  with pytest.warns(UserWarning, match="50000"):
    fid.fid_from_features(_features(rng, 100, 4), mu, s)


def _mmd2_loops(x, y):
  """Direct double sums with k(a, b) = (a.b / d + 1)^3."""
  d = x.shape[1]

  def k(a, b):
    return (a @ b / d + 1) ** 3

  n, m = len(x), len(y)
  kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
  return kxx + kyy - 2 * kxy


def test_kid_matches_direct_unbiased_mmd():
  rng = np.random.default_rng(4)
  x, y = _features(rng, 30, 6), _features(rng, 25, 6, shift=0.5)
  want = _mmd2_loops(x, y)
  assert fid.polynomial_mmd2_unbiased(x, y) == pytest.approx(want, rel=1e-10)
  # One subset as large as the smaller set: a permutation of it, the same statistic.
  mean, std = fid.kernel_inception_distance(
    x[:25], y, np.random.default_rng(0), num_subsets=3, subset_size=100
  )
  assert mean == pytest.approx(_mmd2_loops(x[:25], y), rel=1e-10) and std < 1e-12


def test_kid_is_unbiased_zero_for_equal_distributions():
  """Same distribution: KID averages unbiased estimates of 0, so |mean| is within a few
  standard errors (std / sqrt(subsets)); a mean shift gives a clearly positive KID."""
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
  mean, std = fid.kernel_inception_distance(x, y, rng, num_subsets=50, subset_size=200)
  assert abs(mean) < 4 * std / np.sqrt(50) + 1e-3
  shifted, _ = fid.kernel_inception_distance(x, y + 1.0, rng, num_subsets=50, subset_size=200)
  assert shifted > 20 * std


def test_inception_score_matches_scipy_entropy():
  """IS per split = exp(mean_i KL(p_i || mean_j p_j)), KL from scipy.stats.entropy."""
  rng = np.random.default_rng(6)
  logits = rng.normal(size=(100, 7)) * 3
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  scores = []
  for part in np.array_split(p, 4):
    marginal = part.mean(0)
    scores.append(np.exp(np.mean([scipy.stats.entropy(q, marginal) for q in part])))
  mean, std = fid.inception_score(logits, num_splits=4)
  assert mean == pytest.approx(np.mean(scores), rel=1e-10)
  assert std == pytest.approx(np.std(scores), rel=1e-8)


def test_inception_score_extremes():
  """Confident and uniform over K classes: IS = K; identical predictions: IS = 1."""
  k = 5
  confident = np.tile(200.0 * np.eye(k), (4, 1))
  assert fid.inception_score(confident, num_splits=2)[0] == pytest.approx(k, rel=1e-6)
  same = np.tile(np.arange(k, dtype=float), (20, 1))
  assert fid.inception_score(same, num_splits=2)[0] == pytest.approx(1.0, abs=1e-12)
