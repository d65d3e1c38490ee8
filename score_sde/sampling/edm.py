"""The 2nd-order Heun sampler of Karras et al. 2022 (EDM), for any linear SDE of this package.

EDM samples x_hat = x0 + sigma eps with the ODE dx_hat/dsigma = -sigma grad log p(x_hat; sigma).
A linear SDE with x_t = a(t) x0 + s(t) eps is the same process in the scaled variable
x_hat = x / a(t) at sigma(t) = s(t) / a(t) (EDM eq. 4 with s(t) there = our a(t)), and

    grad_{x_hat} log p(x_hat; sigma) = a(t) score(a(t) x_hat, t),   t = sde.t_of_sigma(sigma),

so one sampler serves every path of the package.
"""

import math

import jax
import jax.numpy as jnp

from score_sde.sampling import schedules
from score_sde.sampling.base import LoopSampler, project_at, projection_key, run_loop, start
from score_sde.sde import LinearSDE, ScoreFn


def check(sde: LinearSDE, num_steps: int = 18, **_):
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")


def edm_heun_loop(
  sde: LinearSDE,
  score_fn: ScoreFn,
  shape,
  *,
  num_steps: int = 18,
  rho: float = 7.0,
  s_churn: float = 0.0,
  s_min: float = 0.0,
  s_max: float = float("inf"),
  s_noise: float = 1.0,
  eps: float = 1e-3,
  schedule: str = "karras",
  to_zero: bool = False,
  denoise: bool = False,
  x_init=None,
  project=None,
) -> LoopSampler:
  """EDM Algorithm 2 (Algorithm 1 when s_churn = 0) from sigma(T) to sigma(eps):

      gamma_i = min(S_churn / n, sqrt(2) - 1) if S_min <= sigma_i <= S_max else 0
      sigma_hat = sigma_i (1 + gamma_i);  x_hat += sqrt(sigma_hat^2 - sigma_i^2) S_noise z
      d = -sigma_hat grad log p(x_hat; sigma_hat);  x' = x_hat + (sigma_{i+1} - sigma_hat) d
      d' = -sigma_{i+1} grad log p(x'; sigma_{i+1});  x_{i+1} = x_hat + (sigma_{i+1} - sigma_hat)(d + d')/2

  sigma_i = sigma(t_i) on the `schedule` grid (default karras with `rho`, EDM eq. 5).
  Default: the last step ends at sigma(eps) > 0 and every step takes the Heun correction (NFE =
  2 num_steps; + 1 with `denoise`, which returns Tweedie's x0_hat there). `to_zero`: EDM's own
  grid and ending, sigma_0..sigma_{n-1} the schedule's num_steps - 1 steps from sigma(T) to
  sigma(eps) and sigma_n = 0, the last step plain Euler (x = x0_hat), NFE = 2 num_steps - 1: with
  num_steps = 18 and eps at sigma = 0.002, sigma(T) = 80, the sampler of the EDM paper (35 NFE).
  The start is x_T (prior draw of `key`, or `x_init`; see `base`) divided by a(T); the result is
  a(eps) x_hat (x_hat itself, the data scale, after `to_zero` or `denoise`). `project` (see
  `base`) acts on x = a(t) x_hat: on x_T and after every step (not between the churn and the Heun
  step; noise-free after the final x0_hat of `denoise`).
  """
  check(sde, num_steps)
  if to_zero:
    if num_steps < 2:
      raise ValueError(f"to_zero needs num_steps >= 2, got {num_steps}")
    ts = schedules.time_grid(sde, num_steps - 1, eps, schedule, rho=rho)
    sigmas = jnp.concatenate([sde.sigma(ts), jnp.zeros(1, ts.dtype)])
  else:
    ts = schedules.time_grid(sde, num_steps, eps, schedule, rho=rho)
    sigmas = sde.sigma(ts)
  a_end = sde.alpha_sigma(ts[-1])[0]
  # a(t) at the grid points (sigma = 0 is the data, a = 1, for every path of the package) and the
  # times at which the projection sees them.
  a_pts = sde.alpha_sigma(ts)[0] * jnp.ones_like(ts)
  t_pts = ts
  if to_zero:
    a_pts, t_pts = jnp.append(a_pts, 1.0), jnp.append(ts, ts[-1])
  gamma_max = min(s_churn / num_steps, math.sqrt(2.0) - 1.0)

  def grad_logp(x_hat, sigma):
    t = sde.t_of_sigma(sigma)
    a = sde.alpha_sigma(t)[0]
    return a * score_fn(a * x_hat, jnp.full(shape[:1], t, x_hat.dtype))

  def step(key, x, i):
    sigma, sigma_next = sigmas[i], sigmas[i + 1]
    gamma = jnp.where((sigma >= s_min) & (sigma <= s_max), gamma_max, 0.0)
    sigma_hat = sigma * (1.0 + gamma)
    z = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
    # sqrt(sigma_hat^2 - sigma^2) written so that gamma = 0 gives exactly 0 (with FMA contraction
    # the difference of squares can round below zero, and its square root is NaN).
    x_hat = x + sigma * jnp.sqrt(gamma * (2.0 + gamma)) * s_noise * z
    d = -sigma_hat * grad_logp(x_hat, sigma_hat)
    x_next = x_hat + (sigma_next - sigma_hat) * d

    def heun(x_next):
      d_next = -sigma_next * grad_logp(x_next, sigma_next)
      return x_hat + (sigma_next - sigma_hat) * 0.5 * (d + d_next)

    if to_zero:  # EDM: the step to sigma = 0 stays Euler (the slope there is not defined)
      return jax.lax.cond(i == num_steps - 1, lambda v: v, heun, x_next)
    return heun(x_next)

  def init(key):
    key, x = start(key, sde, shape, x_init)
    return key, project_at(project, x, ts[0], projection_key(key, 0)) / a_pts[0]

  def run(carry, idx):
    def body(carry, i):
      key, x = carry
      x = step(key, x, i)
      if project is not None:
        x = (
          project_at(project, a_pts[i + 1] * x, t_pts[i + 1], projection_key(key, i + 1))
          / a_pts[i + 1]
        )
      if denoise and not to_zero:  # Tweedie in the scaled variable: x_hat + sigma^2 grad log p
        x = jax.lax.cond(
          i == num_steps - 1,
          lambda v: project_at(
            project, v + sigmas[-1] ** 2 * grad_logp(v, sigmas[-1]), ts[-1], None
          ),
          lambda v: v,
          x,
        )
      return (key, x), None

    return jax.lax.scan(body, carry, idx)[0]

  def output(carry):
    x = carry[1]
    return (x if to_zero or denoise else a_end * x), nfe

  nfe = 2 * num_steps - 1 if to_zero else 2 * num_steps + int(denoise)
  return LoopSampler(init, run, output, num_steps, nfe)


def edm_heun_sample(
  key,
  sde: LinearSDE,
  score_fn: ScoreFn,
  shape,
  *,
  num_steps: int = 18,
  rho: float = 7.0,
  s_churn: float = 0.0,
  s_min: float = 0.0,
  s_max: float = float("inf"),
  s_noise: float = 1.0,
  eps: float = 1e-3,
  schedule: str = "karras",
  to_zero: bool = False,
  denoise: bool = False,
  x_init=None,
  project=None,
):
  """EDM Heun samples of `shape`; see `edm_heun_loop`. Returns (x: shape, nfe: int)."""
  return run_loop(
    edm_heun_loop(
      sde,
      score_fn,
      shape,
      num_steps=num_steps,
      rho=rho,
      s_churn=s_churn,
      s_min=s_min,
      s_max=s_max,
      s_noise=s_noise,
      eps=eps,
      schedule=schedule,
      to_zero=to_zero,
      denoise=denoise,
      x_init=x_init,
      project=project,
    ),
    key,
  )
