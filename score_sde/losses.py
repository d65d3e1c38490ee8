"""Training objectives: continuous denoising score matching and the discrete SMLD / DDPM losses.

Every loss takes `pred_fn(x, t) -> prediction` (the network in its target's space: score, eps,
x0 or v; see `targets.py`) and returns (scalar loss, per-sample losses [B]). The squared error
is averaged over the data dimensions (reduce_mean=True) or, as in the release, summed and halved
(reduce_mean=False): |.|^2 below stands for that reduction.

Continuous DSM (paper eq. 7), written for any target through the score error
    score_pred - score_true = k(t) (pred - true),    score_true = -eps / s(t),
    L = E_t E_x0 E_eps [ lambda(t) |k(t) (pred - true)|^2 ]
with lambda(t) = g(t)^2 ("likelihood weighting", Song et al. 2021b) or the target's own default:
lambda = s^2 for the score (the paper's |s score + z|^2), and plain MSE in the target's space for
eps, x0 and v (lambda = 1 / k^2). t ~ U(eps, T), or by importance sampling with density
pi(t) ~ lambda(t) / s(t)^2 (the loss's typical size at t; notes 002, "time weighting") and the
weight lambda / (pi (T - eps)) so the objective is unchanged.

EDM's objective (Karras et al. 2022, eq. 8 with Table 1's "Ours" column) takes a denoiser
D(x; sigma) (a preconditioned network, `models/precond.py`) instead:
    L = E_sigma E_x0 E_n [ lambda(sigma) |D(x0 + sigma n; sigma) - x0|^2 ],
    ln sigma ~ N(P_mean, P_std^2),  lambda = 1 / c_out^2.
The score-SDE losses are the same objective with sigma = s(t) / a(t), t ~ U(eps, T), and
lambda = 1 / sigma^2: `dsm_loss` with target 'score' on a preconditioned model's score gives
s^2 |score - score_true|^2 = |D - x0|^2 / sigma^2, which for Table 1's VP and VE rows is the
2021 eps-MSE and |sigma score + z|^2 (tests/test_precond.py).
"""

import dataclasses
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from score_sde import targets
from score_sde.models import precond as precond_lib
from score_sde.registry import lookup
from score_sde.sde import LinearSDE, bcast

PredFn = Callable[[jax.Array, jax.Array], jax.Array]


def _reduce(x: jax.Array, reduce_mean: bool) -> jax.Array:
  """[B, ...] -> [B]: the mean over the data dimensions, or (reduce_mean=False) half their sum.

  Half the sum is the 2021 release's convention for every loss (its `reduce_op`): loss values
  and gradients are half the plain sum, which matters where they are clipped (grad_clip = 1
  for the VE paper configs, which all use reduce_mean=False).
  """
  x = x.reshape(x.shape[0], -1)
  return jnp.mean(x, axis=1) if reduce_mean else 0.5 * jnp.sum(x, axis=1)


def loss_weight(sde: LinearSDE, t: jax.Array, target: str, likelihood_weighting: bool) -> jax.Array:
  """lambda(t) k(t)^2: the factor multiplying |pred - true|^2 at time t, [B]."""
  c = targets.path_coeffs(sde, t)
  if likelihood_weighting:
    return c.g2 * targets.score_error_scale(c, target) ** 2
  if target == "score":
    return c.s**2
  return jnp.ones_like(c.s)


@dataclasses.dataclass(frozen=True)
class TimeSampler:
  """t on [eps, T]: uniform, or with a piecewise-constant density fitted to `pi(t)` on a grid.

  The importance sampler inverts the CDF of the piecewise-linear-in-grid density exactly, and
  `density(t)` returns the density actually sampled, so the importance weights are unbiased.
  """

  eps: float
  T: float
  grid: Optional[np.ndarray] = None  # [G] increasing times
  cdf: Optional[np.ndarray] = None  # [G], cdf[0] = 0, cdf[-1] = 1

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    u = jax.random.uniform(key, (n,))
    if self.grid is None:
      return self.eps + (self.T - self.eps) * u
    return jnp.interp(u, jnp.asarray(self.cdf), jnp.asarray(self.grid))

  def density(self, t: jax.Array) -> jax.Array:
    if self.grid is None:
      return jnp.full_like(t, 1.0 / (self.T - self.eps))
    grid, cdf = jnp.asarray(self.grid), jnp.asarray(self.cdf)
    i = jnp.clip(jnp.searchsorted(grid, t, side="right") - 1, 0, len(self.grid) - 2)
    return (cdf[i + 1] - cdf[i]) / (grid[i + 1] - grid[i])


def make_time_sampler(
  sde: LinearSDE, eps: float, importance_density=None, grid_size: int = 2048
) -> TimeSampler:
  """Uniform sampler, or importance sampler with density ~ `importance_density(t)` (unnormalised).

  The grid is uniform in log t (the densities of interest behave like 1/t near t = 0).
  """
  if importance_density is None:
    return TimeSampler(eps, sde.T)
  grid = np.exp(np.linspace(np.log(eps), np.log(sde.T), grid_size))
  w = np.asarray(importance_density(jnp.asarray(grid, jnp.float32)), np.float64)
  if not np.all(np.isfinite(w)) or np.any(w < 0):
    raise ValueError("importance density must be finite and non-negative on [eps, T]")
  cdf = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(grid))])
  return TimeSampler(eps, sde.T, grid.astype(np.float32), (cdf / cdf[-1]).astype(np.float32))


def importance_density_for(sde: LinearSDE, target: str, likelihood_weighting: bool):
  """pi(t) ~ lambda(t) / s(t)^2: the expected size of the weighted loss at time t."""

  def density(t):
    c = targets.path_coeffs(sde, t)
    return loss_weight(sde, t, target, likelihood_weighting) / (
      targets.score_error_scale(c, target) ** 2 * c.s**2
    )

  return density


def dsm_loss(
  key: jax.Array,
  pred_fn: PredFn,
  x0: jax.Array,
  sde: LinearSDE,
  *,
  target: str = "eps",
  reduce_mean: bool = False,
  likelihood_weighting: bool = False,
  time_sampler: Optional[TimeSampler] = None,
  eps: float = 1e-5,
):
  """Continuous-time denoising score matching; x0: [B, ...] -> (loss, per-sample losses [B])."""
  sampler = time_sampler or TimeSampler(eps, sde.T)
  kt, kz = jax.random.split(key)
  t = sampler.sample(kt, x0.shape[0])
  z = jax.random.normal(kz, x0.shape, x0.dtype)
  mean, std = sde.marginal_prob(x0, t)
  xt = mean + bcast(std, x0) * z
  c = targets.path_coeffs(sde, t)
  true = targets.from_eps(z, xt, c, target)
  if target == "x0":
    true = x0  # exact, rather than re-derived through a division by a(t)
  err = _reduce(jnp.square(pred_fn(xt, t) - true), reduce_mean)
  w = loss_weight(sde, t, target, likelihood_weighting)
  if sampler.grid is not None:
    w = w / (sampler.density(t) * (sde.T - sampler.eps))
  losses = w * err
  return jnp.mean(losses), losses


def _chain(sde: LinearSDE, kind: str, loss: str, sde_name: str):
  chain = sde.chain
  if chain is None or chain.kind != kind:
    raise ValueError(f"the {loss} loss needs the {sde_name} SDE (the {kind.upper()} chain)")
  return chain


def smld_loss(
  key: jax.Array, pred_fn: PredFn, x0: jax.Array, sde: LinearSDE, *, reduce_mean: bool = False, **_
):
  """NCSN's discrete loss: i ~ U{0..N-1}, sigma_i^2 |score(x0 + sigma_i z) + z / sigma_i|^2.

  The network is queried at t_i = i T / (N - 1), where sigma(t_i) = sigma_i. Through
  `models.utils.pred_fn_from_model(..., discrete=True)` (the runner's) it sees the release's
  label, the level index k = N - 1 - i (int32), and reads sigma_k = sigma_i from its table: the
  release draws k ~ U{0..N-1} with sigma from its descending table, the same objective.
  """
  chain = _chain(sde, "smld", "smld", "vesde")
  ki, kz = jax.random.split(key)
  i = jax.random.randint(ki, (x0.shape[0],), 0, sde.N)
  sigma = chain.sigmas[i]
  z = jax.random.normal(kz, x0.shape, x0.dtype)
  score = pred_fn(x0 + bcast(sigma, x0) * z, i * sde.T / (sde.N - 1))
  losses = _reduce(jnp.square(bcast(sigma, x0) * score + z), reduce_mean)
  return jnp.mean(losses), losses


def ddpm_loss(
  key: jax.Array, pred_fn: PredFn, x0: jax.Array, sde: LinearSDE, *, reduce_mean: bool = True, **_
):
  """DDPM's L_simple: i ~ U{0..N-1}, |eps - eps_theta(sqrt(abar_i) x0 + sqrt(1 - abar_i) eps, i)|^2."""
  chain = _chain(sde, "ddpm", "ddpm", "vpsde")
  ki, kz = jax.random.split(key)
  i = jax.random.randint(ki, (x0.shape[0],), 0, sde.N)
  abar = chain.alphas_cumprod[i]
  z = jax.random.normal(kz, x0.shape, x0.dtype)
  xt = bcast(jnp.sqrt(abar), x0) * x0 + bcast(jnp.sqrt(1.0 - abar), x0) * z
  losses = _reduce(jnp.square(pred_fn(xt, i * sde.T / (sde.N - 1)) - z), reduce_mean)
  return jnp.mean(losses), losses


def edm_loss(
  key: jax.Array,
  denoise_fn,
  x0: jax.Array,
  sde: Optional[LinearSDE] = None,
  *,
  preconditioning,
  p_mean: float = -1.2,
  p_std: float = 1.2,
  reduce_mean: bool = False,
  **_,
):
  """EDM's loss lambda(sigma) |D(x0 + sigma n; sigma) - x0|^2, ln sigma ~ N(p_mean, p_std^2),
  lambda = 1 / c_out^2 of `preconditioning`. `denoise_fn(x: [B, ...], sigma: [B])` is D.
  With reduce_mean=False the squared error is half the sum over dimensions, as in every loss
  here (EDM sums; Adam without clipping, EDM's setting, is indifferent to the factor).
  The path `sde` plays no part: D lives in the variance-exploding frame (x_t / a(t)).
  Returns (loss, per-sample losses [B])."""
  del sde
  ks, kn = jax.random.split(key)
  sigma = precond_lib.sample_log_normal_sigma(ks, x0.shape[0], p_mean, p_std)
  n = jax.random.normal(kn, x0.shape, x0.dtype)
  d = denoise_fn(x0 + bcast(sigma, x0) * n, sigma)
  losses = precond_lib.loss_weight(preconditioning, sigma) * _reduce(
    jnp.square(d - x0), reduce_mean
  )
  return jnp.mean(losses), losses


LOSSES = {"dsm": dsm_loss, "smld": smld_loss, "ddpm": ddpm_loss, "edm": edm_loss}


def get_loss(name: str):
  return lookup(LOSSES, name, "loss")
