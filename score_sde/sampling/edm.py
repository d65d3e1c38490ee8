"""The 2nd-order Heun sampler of Karras et al. 2022 (EDM), for any linear SDE of this package.

EDM samples x_hat = x0 + sigma eps with the ODE dx_hat/dsigma = -sigma grad log p(x_hat; sigma).
A linear SDE with x_t = a(t) x0 + s(t) eps is the same process in the scaled variable
x_hat = x / a(t) at sigma(t) = s(t) / a(t) (EDM eq. 4 with s(t) there = our a(t)), and

    grad_{x_hat} log p(x_hat; sigma) = a(t) score(a(t) x_hat, t),   t = t(sigma),

so one sampler serves VP, sub-VP, VE and any Gaussian path. t(sigma) is closed-form for VE, VP
and sub-VP (`t_of_sigma`) and found by bisection on the monotone sigma(t) for any other path.
"""
import math

import jax
import jax.numpy as jnp

from score_sde.sde import LinearSDE, ScoreFn, SubVPSDE, VESDE, VPSDE


def sigma_of_t(sde: LinearSDE, t):
  """sigma(t) = s(t) / a(t), the noise-to-signal ratio of the path."""
  a, s = sde.alpha_sigma(t)
  return s / a


def _vp_t_of_log_inv_a2(sde: VPSDE, L):
  """Solves -2 log a(t) = 1/2 (beta_max - beta_min) t^2 + beta_min t = L for t >= 0, in the
  cancellation-free form t = 2 L / (beta_min + sqrt(beta_min^2 + 2 (beta_max - beta_min) L))."""
  d = sde.beta_max - sde.beta_min
  return 2.0 * L / (sde.beta_min + jnp.sqrt(sde.beta_min ** 2 + 2.0 * d * L))


def t_of_sigma(sde: LinearSDE, sigma, iters: int = 64):
  """Inverse of sigma(t) = s(t) / a(t).

  VE:     sigma = sigma_min (sigma_max / sigma_min)^t  ->  t = log(sigma / sigma_min) / log(ratio).
  VP:     sigma^2 = 1 / a^2 - 1                        ->  -2 log a = log(1 + sigma^2).
  sub-VP: sigma = 1 / a - a                            ->  a = (sqrt(sigma^2 + 4) - sigma) / 2.
  (VP and sub-VP then solve the quadratic -2 log a(t) = L for t.) Closed forms extend past T
  (stochastic EDM steps may raise sigma above sigma(T)). Any other path: bisection on [0, T]
  (sigma(t) increases for every path here), `iters` halvings.
  """
  sigma = jnp.asarray(sigma)
  if isinstance(sde, VESDE):
    return jnp.log(sigma / sde.sigma_min) / math.log(sde.sigma_max / sde.sigma_min)
  if isinstance(sde, SubVPSDE):
    a = 0.5 * (jnp.sqrt(sigma ** 2 + 4.0) - sigma)
    return _vp_t_of_log_inv_a2(sde, -2.0 * jnp.log(a))
  if isinstance(sde, VPSDE):
    return _vp_t_of_log_inv_a2(sde, jnp.log1p(sigma ** 2))
  return _bisect_t_of_sigma(sde, sigma, iters)


def _bisect_t_of_sigma(sde: LinearSDE, sigma, iters: int):
  """t in [0, T] with sigma(t) = sigma, by bisection."""
  lo = jnp.zeros_like(sigma)
  hi = jnp.full_like(sigma, sde.T)

  def body(_, bounds):
    lo, hi = bounds
    mid = 0.5 * (lo + hi)
    below = sigma_of_t(sde, mid) < sigma
    return jnp.where(below, mid, lo), jnp.where(below, hi, mid)
  lo, hi = jax.lax.fori_loop(0, iters, body, (lo, hi))
  return 0.5 * (lo + hi)


def karras_sigmas(sigma_min: float, sigma_max: float, num_steps: int, rho: float = 7.0):
  """sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,
  i = 0..n-1 (EDM eq. 5), n = num_steps + 1 so that num_steps steps end exactly at sigma_min."""
  i = jnp.arange(num_steps + 1) / num_steps
  inv = 1.0 / rho
  return (sigma_max ** inv + i * (sigma_min ** inv - sigma_max ** inv)) ** rho


def edm_heun_sample(key, sde: LinearSDE, score_fn: ScoreFn, shape, *, num_steps: int = 18,
                    rho: float = 7.0, s_churn: float = 0.0, s_min: float = 0.0,
                    s_max: float = float("inf"), s_noise: float = 1.0, eps: float = 1e-3):
  """EDM Algorithm 2 (Algorithm 1 when s_churn = 0) from sigma(T) to sigma(eps):

      gamma_i = min(S_churn / n, sqrt(2) - 1) if S_min <= sigma_i <= S_max else 0
      sigma_hat = sigma_i (1 + gamma_i);  x_hat += sqrt(sigma_hat^2 - sigma_i^2) S_noise z
      d = -sigma_hat grad log p(x_hat; sigma_hat);  x' = x_hat + (sigma_{i+1} - sigma_hat) d
      d' = -sigma_{i+1} grad log p(x'; sigma_{i+1});  x_{i+1} = x_hat + (sigma_{i+1} - sigma_hat)(d + d')/2

  Unlike EDM the last step ends at sigma(eps) > 0, not 0, so every step takes the Heun
  correction: NFE = 2 num_steps. The start is the SDE's prior draw divided by a(T).
  Returns (x = a(eps) x_hat: shape, nfe: int).
  """
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  sigmas = karras_sigmas(sigma_of_t(sde, eps), sigma_of_t(sde, sde.T), num_steps, rho)
  ts = t_of_sigma(sde, sigmas).at[0].set(sde.T).at[-1].set(eps)
  a_t = sde.alpha_sigma(ts)[0]
  gamma_max = min(s_churn / num_steps, math.sqrt(2.0) - 1.0)
  key, k0 = jax.random.split(key)
  x = sde.prior_sample(k0, shape) / a_t[0]

  def grad_logp(x_hat, sigma):
    t = t_of_sigma(sde, sigma)
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
    return x_hat + (sigma_next - sigma_hat) * 0.5 * (d + d_next), None

  x, _ = jax.lax.scan(step, x, jnp.arange(num_steps))
  return a_t[-1] * x, 2 * num_steps
