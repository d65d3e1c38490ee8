"""Bits per dimension of quantized data under a continuous model, with uniform dequantization.

The data have L levels per dimension, a property of the data set (`num_levels`: 256 for 8-bit
images, 17 for scikit-learn's 8 x 8 digits, whose grey levels are 0..16). Every term, for
levels x in {0, ..., L - 1}^D:

1. Dequantization. u = (x + U) / L with U ~ U[0, 1)^D fills the cell
   C(x) = [x/L, (x+1)/L) of volume L^-D; the L^D cells tile [0, 1)^D. A density p_u on
   [0, 1]^D assigns the discrete point x the probability
   P(x) = int_{C(x)} p_u(u) du = E_U[p_u((x + U)/L)] L^-D, and by Jensen's inequality

       log P(x) >= E_U[log p_u((x + U)/L)] - D log L                          (1)

   (Theis et al. 2016; Ho et al. 2019). So -log2 of the right side is an upper bound on the
   discrete code length, in bits, and it is what the paper reports (L = 256 there).

2. Data scaling. The model works on y = a u + b: a = 1, b = 0 for data in [0, 1]; a = 2, b = -1
   for centred data in [-1, 1] (data.centered). Change of variables: p_u(u) = p_y(y) a^D, so
   log p_u(u) = log p_y(y) + D log a.

3. Bits per dimension of one dequantization draw (the model's log p_y from the ODE, in nats):

       bpd = -(log p_y(y) + D log a - D log L) / (D ln 2)
           = -log p_y(y) / (D ln 2) - log2 a + log2 L.                        (2)

   A density uniform on the data range scores exactly log2 L (every level gets mass 1/L), the
   cost of storing the level with no model at all: 8 bits for 8-bit images, log2 17 = 4.09 for
   the digits. Dequantizing 17-level data with 1/256-wide cells instead measures a density on
   cells 1/15 of the spacing between levels and charges log2 256 for them: not the code length
   of the data.

   The 2021 release (yang-song/score_sde and score_sde_pytorch, likelihood.py) wrote the last
   two terms for L = 256 as `offset = 7. - inverse_scaler(-1.)`, commented "a hack to convert
   log-likelihoods to bits/dim": its inverse scaler maps -1 to 0 for centred data (offset
   7 = 8 - log2 2) and to -1 for [0, 1] data (offset 8 = 8 - log2 1). The 8 is log2 256, the
   cell volume of (1); the -1 is the Jacobian of the centring. The release's JAX run_lib.py
   always loaded the bits/dim data with uniform_dequantization=True and went over the test set
   5 times (5 draws).

Without dequantization (u = x/(L - 1) exactly, as in training without
data.uniform_dequantization) formula (2) is no bound at all: a continuous density may put
arbitrarily high density on the L^D grid points, log p_y is unbounded above, and "bits/dim" goes
negative. That is the negative bits/dim users of the 2021 code reported when they evaluated on
non-dequantized data.

Several draws (num_dequant = J). Per data point the J per-draw values (2) are averaged:
`bpd` = mean_j bpd_j is an unbiased estimate of the bound (1) (lower variance than one draw;
the same bound in expectation, not a tighter one). Also reported: the importance-weighted bound
`bpd_iw` = -(log mean_j p_u(u_j) - D log L) / (D ln 2), whose expectation is tighter (it
decreases with J towards -log2 P(x) / D; Burda et al. 2016). `bpd_iw` is a bound only with the
exact divergence: exp of a Hutchinson estimate of log p is biased.

A baseline to read the number against (`categorical_baseline`): each dimension an independent
categorical over the L levels, q_d(k) = (n_dk + alpha) / (N + alpha L) from the counts n_dk of
level k at dimension d in N training examples, scored on held-out x as
-(1/D) sum_d log2 q_d(x_d) bits/dim. A generative model worth its bits/dim beats it.

Shapes: levels x, u, y: [B, ...]; log-densities [B] (or [J, B] for J draws).
"""

import math
from typing import Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
LEVELS_8BIT = 256


def data_scale(centered: bool) -> Tuple[float, float]:
  """(a, b) of the model's data scaling y = a u + b, u in [0, 1]."""
  return (2.0, -1.0) if centered else (1.0, 0.0)


def dequantize(
  key: Array, levels: Array, dtype=jnp.float32, num_levels: int = LEVELS_8BIT
) -> Array:
  """u = (x + U) / L, U ~ U[0, 1)^D, for integer levels x in {0, ..., L - 1}: [B, ...] in [0, 1)."""
  noise = jax.random.uniform(key, levels.shape, dtype=dtype)
  return (levels.astype(dtype) + noise) / num_levels


def to_model_space(u: Array, centered: bool) -> Array:
  """y = a u + b, the scaling the model was trained on."""
  a, b = data_scale(centered)
  return a * u + b


def bits_per_dim(
  logp_y: Array, num_dims: int, centered: bool, num_levels: int = LEVELS_8BIT
) -> Array:
  """Formula (2): bpd = -(log p_y(y) + D log a - D log L) / (D ln 2), elementwise on logp_y."""
  a, _ = data_scale(centered)
  return -(logp_y + num_dims * math.log(a) - num_dims * math.log(num_levels)) / (
    num_dims * math.log(2.0)
  )


def release_offset(centered: bool) -> float:
  """The 2021 release's `7. - inverse_scaler(-1.)`, equal to 8 - log2 a for its two scalings."""
  inverse_scaler_of_minus_one = 0.0 if centered else -1.0
  return 7.0 - inverse_scaler_of_minus_one


def combine_draws(
  logp_y: Array, num_dims: int, centered: bool, num_levels: int = LEVELS_8BIT
) -> Dict[str, Array]:
  """Per data point from J dequantization draws `logp_y: [J, B]` (nats, model space):

  'bpd': mean over draws of formula (2) (the uniform-dequantization bound (1), estimated);
  'bpd_iw': importance-weighted bound, formula (2) with log p_y replaced by log mean_j p_y.
  """
  j = logp_y.shape[0]
  per_draw = bits_per_dim(logp_y, num_dims, centered, num_levels)
  log_mean = jax.nn.logsumexp(logp_y, axis=0) - math.log(j)
  return {
    "bpd": jnp.mean(per_draw, axis=0),
    "bpd_iw": bits_per_dim(log_mean, num_dims, centered, num_levels),
  }


def categorical_baseline(
  train_levels: np.ndarray, eval_levels: np.ndarray, num_levels: int, alpha: float = 0.5
) -> np.ndarray:
  """Bits/dim [M] of eval_levels [M, ...] under independent per-dimension categoricals fitted
  to train_levels [N, ...]: q_d(k) = (n_dk + alpha) / (N + alpha L) (alpha = 1/2: the
  Krichevsky-Trofimov estimate; alpha = 0: maximum likelihood), bpd = -(1/D) sum_d log2 q_d(x_d).
  """
  train = np.asarray(train_levels).reshape(len(train_levels), -1)
  test = np.asarray(eval_levels).reshape(len(eval_levels), -1)
  if train.shape[1] != test.shape[1]:
    raise ValueError(f"train and eval examples differ in size: {train.shape} vs {test.shape}")
  if min(train.min(), test.min()) < 0 or max(train.max(), test.max()) >= num_levels:
    raise ValueError(f"levels must lie in [0, {num_levels - 1}]")
  n, d = train.shape
  counts = np.zeros((d, num_levels), np.float64)
  np.add.at(counts, (np.broadcast_to(np.arange(d), train.shape), train), 1.0)
  with np.errstate(divide="ignore"):
    log2_q = np.log2(counts + alpha) - np.log2(n + alpha * num_levels)  # [D, L]
  return -np.mean(log2_q[np.arange(d)[None, :], test], axis=1)


def nats_per_dim(logp: Array, num_dims: int) -> Array:
  """Negative log-likelihood per dimension, -log p(x) / D, for continuous data (no quantization)."""
  return -logp / num_dims


def mean_and_stderr(values) -> Tuple[float, float]:
  """Mean and its standard error std / sqrt(n) (sample std, n - 1) of per-data-point values."""
  v = np.asarray(values, np.float64).reshape(-1)
  if v.size < 2:
    return float(v.mean()), float("nan")
  return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))
