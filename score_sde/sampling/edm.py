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
from score_sde.sampling.base import project_at, projection_key, start
from score_sde.sde import LinearSDE, ScoreFn


def check(sde: LinearSDE, num_steps: int = 18, **_):
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")


def edm_heun_sample(key, sde: LinearSDE, score_fn: ScoreFn, shape, *, num_steps: int = 18,
                    rho: float = 7.0, s_churn: float = 0.0, s_min: float = 0.0,
                    s_max: float = float("inf"), s_noise: float = 1.0, eps: float = 1e-3,
                    schedule: str = "karras", x_init=None, project=None):
  """EDM Algorithm 2 (Algorithm 1 when s_churn = 0) from sigma(T) to sigma(eps):

      gamma_i = min(S_churn / n, sqrt(2) - 1) if S_min <= sigma_i <= S_max else 0
      sigma_hat = sigma_i (1 + gamma_i);  x_hat += sqrt(sigma_hat^2 - sigma_i^2) S_noise z
      d = -sigma_hat grad log p(x_hat; sigma_hat);  x' = x_hat + (sigma_{i+1} - sigma_hat) d
      d' = -sigma_{i+1} grad log p(x'; sigma_{i+1});  x_{i+1} = x_hat + (sigma_{i+1} - sigma_hat)(d + d')/2

  sigma_i = sigma(t_i) on the `schedule` grid (default karras with `rho`, EDM eq. 5). Unlike EDM
  the last step ends at sigma(eps) > 0, not 0, so every step takes the Heun correction:
  NFE = 2 num_steps. The start is x_T (prior draw of `key`, or `x_init`; see `base`) divided by
  a(T). `project` (see `base`) acts on x = a(t) x_hat: on x_T and after every step (not between
  the churn and the Heun step). Returns (x = a(eps) x_hat: shape, nfe: int).
  """
  check(sde, num_steps)
  ts = schedules.time_grid(sde, num_steps, eps, schedule, rho=rho)
  sigmas = sde.sigma(ts)
  a_t = sde.alpha_sigma(ts)[0]
  gamma_max = min(s_churn / num_steps, math.sqrt(2.0) - 1.0)
  key, x = start(key, sde, shape, x_init)
  x = project_at(project, x, ts[0], projection_key(key, 0)) / a_t[0]

  def grad_logp(x_hat, sigma):
    t = sde.t_of_sigma(sigma)
    a = sde.alpha_sigma(t)[0]
    return a * score_fn(a * x_hat, jnp.full(shape[:1], t, x_hat.dtype))

  def step(x, i):
    sigma, sigma_next = sigmas[i], sigmas[i + 1]
    gamma = jnp.where((sigma >= s_min) & (sigma <= s_max), gamma_max, 0.0)
    sigma_hat = sigma * (1.0 + gamma)
    z = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
    # sqrt(sigma_hat^2 - sigma^2) written so that gamma = 0 gives exactly 0 (with FMA contraction
    # the difference of squares can round below zero, and its square root is NaN).
    x_hat = x + sigma * jnp.sqrt(gamma * (2.0 + gamma)) * s_noise * z
    d = -sigma_hat * grad_logp(x_hat, sigma_hat)
    x_next = x_hat + (sigma_next - sigma_hat) * d
    d_next = -sigma_next * grad_logp(x_next, sigma_next)
    x = x_hat + (sigma_next - sigma_hat) * 0.5 * (d + d_next)
    if project is not None:
      x = project_at(project, a_t[i + 1] * x, ts[i + 1], projection_key(key, i + 1)) / a_t[i + 1]
    return x, None

  x, _ = jax.lax.scan(step, x, jnp.arange(num_steps))
  return a_t[-1] * x, 2 * num_steps
