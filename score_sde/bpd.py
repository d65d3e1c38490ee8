"""Bits per dimension of 8-bit data under a continuous model, with uniform dequantization.

Every term, for pixels x in {0, ..., 255}^D:

1. Dequantization. u = (x + U) / 256 with U ~ U[0, 1)^D fills the cell
   C(x) = [x/256, (x+1)/256) of volume 256^-D. A density p_u on [0, 1]^D assigns the discrete
   point x the probability P(x) = int_{C(x)} p_u(u) du = E_U[p_u((x + U)/256)] 256^-D, and by
   Jensen's inequality

       log P(x) >= E_U[log p_u((x + U)/256)] - D log 256                      (1)

   (Theis et al. 2016; Ho et al. 2019). So -log2 of the right side is an upper bound on the
   discrete code length, in bits, and it is what the paper reports.

2. Data scaling. The model works on y = a u + b: a = 1, b = 0 for data in [0, 1]; a = 2, b = -1
   for centred data in [-1, 1] (data.centered). Change of variables: p_u(u) = p_y(y) a^D, so
   log p_u(u) = log p_y(y) + D log a.

3. Bits per dimension of one dequantization draw (the model's log p_y from the ODE, in nats):

       bpd = -(log p_y(y) + D log a - D log 256) / (D ln 2)
           = -log p_y(y) / (D ln 2) - log2 a + 8.                             (2)

   The 2021 release (yang-song/score_sde and score_sde_pytorch, likelihood.py) wrote the last
   two terms as `offset = 7. - inverse_scaler(-1.)`, commented "a hack to convert log-likelihoods
   to bits/dim": its inverse scaler maps -1 to 0 for centred data (offset 7 = 8 - log2 2) and to
   -1 for [0, 1] data (offset 8 = 8 - log2 1). The 8 is log2 256, the cell volume of (1); the
   -1 is the Jacobian of the centring. The release's JAX run_lib.py always loaded the bits/dim
   data with uniform_dequantization=True and went over the test set 5 times (5 draws).

Without dequantization (u = x/255 exactly, as in training without data.uniform_dequantization)
formula (2) is no bound at all: a continuous density may put arbitrarily high density on the
256^D grid points, log p_y is unbounded above, and "bits/dim" goes negative. That is the
negative bits/dim users of the 2021 code reported when they evaluated on non-dequantized data.

Several draws (num_dequant = J). Per data point the J per-draw values (2) are averaged:
`bpd` = mean_j bpd_j is an unbiased estimate of the bound (1) (lower variance than one draw;
the same bound in expectation, not a tighter one). Also reported: the importance-weighted bound
`bpd_iw` = -(log mean_j p_u(u_j) - D log 256) / (D ln 2), whose expectation is tighter (it
decreases with J towards -log2 P(x) / D; Burda et al. 2016). `bpd_iw` is a bound only with the
exact divergence: exp of a Hutchinson estimate of log p is biased.

Shapes: pixels and u, y: [B, ...]; log-densities [B] (or [J, B] for J draws).
"""
import math
from typing import Dict, Tuple

import jax
import jax.numpy as jnp

Array = jax.Array
LOG_256 = math.log(256.0)


def data_scale(centered: bool) -> Tuple[float, float]:
  """(a, b) of the model's data scaling y = a u + b, u in [0, 1]."""
  return (2.0, -1.0) if centered else (1.0, 0.0)


def dequantize(key: Array, pixels: Array, dtype=jnp.float32) -> Array:
  """u = (x + U) / 256, U ~ U[0, 1)^D, for integer pixels x in {0, ..., 255}: [B, ...] in [0, 1)."""
  noise = jax.random.uniform(key, pixels.shape, dtype=dtype)
  return (pixels.astype(dtype) + noise) / 256.0


def to_model_space(u: Array, centered: bool) -> Array:
  """y = a u + b, the scaling the model was trained on."""
  a, b = data_scale(centered)
  return a * u + b


def bits_per_dim(logp_y: Array, num_dims: int, centered: bool) -> Array:
  """Formula (2): bpd = -(log p_y(y) + D log a - D log 256) / (D ln 2), elementwise on logp_y."""
  a, _ = data_scale(centered)
  return -(logp_y + num_dims * math.log(a) - num_dims * LOG_256) / (num_dims * math.log(2.0))


def release_offset(centered: bool) -> float:
  """The 2021 release's `7. - inverse_scaler(-1.)`, equal to 8 - log2 a for its two scalings."""
  inverse_scaler_of_minus_one = 0.0 if centered else -1.0
  return 7.0 - inverse_scaler_of_minus_one


def combine_draws(logp_y: Array, num_dims: int, centered: bool) -> Dict[str, Array]:
  """Per data point from J dequantization draws `logp_y: [J, B]` (nats, model space):

  'bpd': mean over draws of formula (2) (the uniform-dequantization bound (1), estimated);
  'bpd_iw': importance-weighted bound, formula (2) with log p_y replaced by log mean_j p_y.
  """
  j = logp_y.shape[0]
  per_draw = bits_per_dim(logp_y, num_dims, centered)
  log_mean = jax.nn.logsumexp(logp_y, axis=0) - math.log(j)
  return {"bpd": jnp.mean(per_draw, axis=0), "bpd_iw": bits_per_dim(log_mean, num_dims, centered)}


def nats_per_dim(logp: Array, num_dims: int) -> Array:
  """Negative log-likelihood per dimension, -log p(x) / D, for continuous data (no quantization)."""
  return -logp / num_dims


def mean_and_stderr(values) -> Tuple[float, float]:
  """Mean and its standard error std / sqrt(n) (sample std, n - 1) of per-data-point values."""
  import numpy as np
  v = np.asarray(values, np.float64).reshape(-1)
  if v.size < 2:
    return float(v.mean()), float("nan")
  return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))
