"""Sample quality for the 2-D toys (data/toy.py) under their exact densities.

Sliced W2 (score_sde.metrics) compares point clouds but hardly sees a thin bridge of samples
between modes; these two numbers do:

    NLL = -mean_i log p(x_i)            (exact density p of the toy; +inf once a sample falls
                                         where p = 0, e.g. off the checkerboard)
    off-mode fraction = fraction of samples farther than `num_std` noise standard deviations from
                        every mode (a Gaussian component's centre, or the curve of a noisy curve)

Densities, with N(x; m, s^2) the isotropic 2-D normal density:
    eight_gaussians: p(x) = (1/8) sum_k N(x; c_k, s^2),  c_k = 2 (cos k pi/4, sin k pi/4) / 1.414,
                     s = 0.1 / 1.414  (an exact mixture)
    checkerboard:    p(x) = 1/8 on the 8 dark unit squares of [-2, 2]^2 (floor x1 + floor x2 even)
    swiss_roll:      p(x) = E_theta N(x; theta (cos theta, sin theta) / 7, 0.05^2),
                     theta ~ U(1.5 pi, 4.5 pi)
    two_moons:       p(x) = (1/2) sum_moon E_a N(x; 1.5 (g_moon(a) - (0.5, 0.25)), 0.05^2),
                     a ~ U(0, pi), g_upper = (cos a, sin a), g_lower = (1 - cos a, 0.5 - sin a)
The curves' mixtures over a continuous parameter are integrated with the midpoint rule on a grid
whose spacing along the curve is at most a quarter of the noise std s: the rule's error for the
Gaussian integrand is about exp(-2 pi^2 (s / spacing)^2) < 1e-130 along the curve, and about
(spacing / s)^2 / (24 sqrt(2 pi)) ~ 1e-3 (relative) within a few s of the curve's two ends.
"""

from typing import Callable, Dict, Tuple

import numpy as np
from scipy.special import logsumexp

from score_sde.registry import lookup

EIGHT_GAUSSIANS_STD = 0.1 / 1.414
CURVE_NOISE_STD = 0.05


def _squared_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
  """|x_i - c_k|^2 [N, K] (float64; the expanded form rounds at ~1e-15, far below std^2)."""
  d2 = np.sum(x**2, 1)[:, None] + np.sum(centers**2, 1)[None, :] - 2 * x @ centers.T
  return np.maximum(d2, 0.0)


def _gaussian_mixture_logpdf(
  x: np.ndarray, centers: np.ndarray, std: float, chunk: int = 4096
) -> np.ndarray:
  """log (1/K) sum_k N(x; centers_k, std^2 I) for x: [N, 2], centers: [K, 2] -> [N]."""
  out = np.empty(len(x))
  log_norm = -np.log(len(centers)) - np.log(2 * np.pi * std**2)
  for i in range(0, len(x), chunk):
    d2 = _squared_distances(x[i : i + chunk], centers)
    out[i : i + chunk] = logsumexp(-d2 / (2 * std**2), axis=1) + log_norm
  return out


def _min_distance(x: np.ndarray, centers: np.ndarray, chunk: int = 4096) -> np.ndarray:
  """min_k |x - centers_k| for x: [N, 2] -> [N]."""
  out = np.empty(len(x))
  for i in range(0, len(x), chunk):
    out[i : i + chunk] = np.sqrt(_squared_distances(x[i : i + chunk], centers).min(axis=1))
  return out


def eight_gaussians_modes() -> Tuple[np.ndarray, float]:
  k = np.arange(8)
  return 2.0 * np.stack(
    [np.cos(k * np.pi / 4), np.sin(k * np.pi / 4)], 1
  ) / 1.414, EIGHT_GAUSSIANS_STD


def swiss_roll_modes(num: int = 1536) -> Tuple[np.ndarray, float]:
  """Midpoints of `num` equal theta-cells of the spiral (speed |d/dtheta| = sqrt(1 + theta^2) / 7
  <= 2.03, so spacing <= 2.03 * 3 pi / num = 0.0125 = s / 4)."""
  theta = 1.5 * np.pi + 3 * np.pi * (np.arange(num) + 0.5) / num
  return np.stack([theta * np.cos(theta), theta * np.sin(theta)], 1) / 7.0, CURVE_NOISE_STD


def two_moons_modes(num: int = 512) -> Tuple[np.ndarray, float]:
  """Midpoints of `num` equal a-cells on each half circle (spacing 1.5 pi / num = 0.0092);
  both moons have probability 1/2, so the equal-weight mixture over all points is exact."""
  a = np.pi * (np.arange(num) + 0.5) / num
  upper = np.stack([np.cos(a), np.sin(a)], 1)
  lower = np.stack([1 - np.cos(a), 0.5 - np.sin(a)], 1)
  return (np.concatenate([upper, lower]) - np.array([0.5, 0.25])) * 1.5, CURVE_NOISE_STD


def _on_checkerboard(x: np.ndarray) -> np.ndarray:
  inside = np.all((x >= -2) & (x < 2), axis=1)
  return inside & ((np.floor(x[:, 0]) + np.floor(x[:, 1])) % 2 == 0)


# name -> modes(): (points [K, 2], noise std); the density is their equal-weight Gaussian mixture.
MIXTURE_MODES: Dict[str, Callable[[], Tuple[np.ndarray, float]]] = {
  "eight_gaussians": eight_gaussians_modes,
  "swiss_roll": swiss_roll_modes,
  "two_moons": two_moons_modes,
}
TOY_NAMES = sorted(list(MIXTURE_MODES) + ["checkerboard"])


def _check(name: str, x: np.ndarray) -> np.ndarray:
  lookup(dict.fromkeys(TOY_NAMES), name, "toy distribution")
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or x.shape[1] != 2:
    raise ValueError(f"toy samples must be [N, 2], got {x.shape}")
  return x


def toy_log_density(name: str, x: np.ndarray) -> np.ndarray:
  """Exact log p(x) [N] of toy `name` at x: [N, 2] (-inf where p = 0)."""
  x = _check(name, x)
  if name == "checkerboard":
    return np.where(_on_checkerboard(x), -np.log(8.0), -np.inf)
  centers, std = MIXTURE_MODES[name]()
  return _gaussian_mixture_logpdf(x, centers, std)


def toy_nll(name: str, x: np.ndarray) -> float:
  """-mean_i log p(x_i) of samples x: [N, 2] (nats; +inf if any sample has p = 0)."""
  return float(-np.mean(toy_log_density(name, x)))


def off_mode_fraction(name: str, x: np.ndarray, num_std: float = 4.0) -> float:
  """Fraction of samples x: [N, 2] farther than num_std noise stds from every mode (centre or
  curve point); for the checkerboard, the fraction outside its dark squares. An exact sample of
  a Gaussian mode lies beyond r = num_std stds with probability exp(-r^2 / 2) (3e-4 at 4)."""
  x = _check(name, x)
  if name == "checkerboard":
    return float(np.mean(~_on_checkerboard(x)))
  centers, std = MIXTURE_MODES[name]()
  return float(np.mean(_min_distance(x, centers) > num_std * std))


def toy_metrics(name: str, x: np.ndarray, num_std: float = 4.0) -> Dict[str, float]:
  """{'nll', 'off_mode_fraction'} of samples x: [N, 2] of toy `name`."""
  return {"nll": toy_nll(name, x), "off_mode_fraction": off_mode_fraction(name, x, num_std)}
