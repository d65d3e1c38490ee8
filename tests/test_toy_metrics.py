"""Exact toy densities: they integrate to 1, match the generators of data/toy.py (the mean NLL of
exact samples is the entropy, within Monte Carlo error) and find samples off the modes."""

import numpy as np
import pytest

from score_sde import toy_metrics
from score_sde.data.toy import sample_toy

N = 20_000


def test_eight_gaussians_nll_is_the_entropy():
  """Well separated modes (distance 1.08 vs std 0.07): H = log 8 + log(2 pi e s^2). Per sample,
  -log p = H - 1 + |z|^2 / 2 with |z|^2 ~ chi^2_2, standard deviation 1, so the mean of N
  samples is within 4 / sqrt(N) of H."""
  x = sample_toy("eight_gaussians", np.random.default_rng(0), N)
  s = toy_metrics.EIGHT_GAUSSIANS_STD
  entropy = np.log(8) + np.log(2 * np.pi * np.e * s**2)
  assert toy_metrics.toy_nll("eight_gaussians", x) == pytest.approx(entropy, abs=4 / np.sqrt(N))


def test_checkerboard_density_is_one_eighth_on_its_support():
  x = sample_toy("checkerboard", np.random.default_rng(1), N)
  assert toy_metrics.toy_nll("checkerboard", x) == pytest.approx(np.log(8), rel=1e-12)
  assert toy_metrics.off_mode_fraction("checkerboard", x) == 0.0
  assert toy_metrics.toy_nll("checkerboard", np.array([[0.5, -0.5]])) == np.inf


@pytest.mark.parametrize(
  "name,box", [("swiss_roll", 2.3), ("two_moons", 2.6), ("eight_gaussians", 2.0)]
)
def test_density_integrates_to_one_and_matches_the_generator(name, box):
  """Riemann sum of p on a grid of spacing h = 0.04 (0.8 of the narrowest std, where the sum of
  a Gaussian is exact to ~exp(-2 pi^2 (s / h)^2) = 4e-14) gives 1; the mean NLL of exact samples (a
  cross-entropy, >= the entropy with equality only if p is the generator's density) equals the
  grid entropy -sum p log p h^2 within 4 standard errors."""
  h = 0.04
  g = np.arange(-box, box, h) + h / 2
  grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
  logp = toy_metrics.toy_log_density(name, grid)
  p = np.exp(logp)
  assert np.sum(p) * h**2 == pytest.approx(1.0, abs=2e-3)
  entropy = -np.sum(p * logp) * h**2
  x = sample_toy(name, np.random.default_rng(2), N // 4)
  nll = -toy_metrics.toy_log_density(name, x)
  assert np.mean(nll) == pytest.approx(entropy, abs=4 * np.std(nll) / np.sqrt(len(x)) + 5e-3)


@pytest.mark.parametrize("name", toy_metrics.TOY_NAMES)
def test_off_mode_fraction_small_on_exact_samples_large_on_noise(name):
  """Exact samples lie beyond 4 stds of every mode with probability <= exp(-8) = 3e-4; uniform
  noise on [-3, 3]^2 mostly falls between or outside the modes."""
  x = sample_toy(name, np.random.default_rng(3), 2000)
  assert toy_metrics.off_mode_fraction(name, x) < 3e-3
  noise = np.random.default_rng(4).uniform(-3, 3, size=(2000, 2))
  assert toy_metrics.off_mode_fraction(name, noise) > 0.5
  assert toy_metrics.toy_nll(name, noise) > toy_metrics.toy_nll(name, x) + 1


def test_unknown_toy_lists_the_valid_names():
  with pytest.raises(ValueError, match="choose from"):
    toy_metrics.toy_nll("spiral", np.zeros((3, 2)))
