"""Predictor-corrector sampling (paper Algorithm 1 / appendix G).

Predictor signature: `predictor(key, sde, score_fn, x, t, dt) -> (x, x_mean)`, with t: [B] the
current time and dt < 0 the time step. Corrector signature:
`corrector(key, sde, score_fn, x, t, snr, n_steps) -> (x, x_mean)`.
"""
from typing import Callable, Dict

import jax
import jax.numpy as jnp

from score_sde.registry import lookup
from score_sde.sde import LinearSDE, ScoreFn, bcast

PREDICTORS: Dict[str, Callable] = {}
CORRECTORS: Dict[str, Callable] = {}


def euler_maruyama_predictor(key, sde: LinearSDE, score_fn: ScoreFn, x, t, dt):
  """x <- x + [f - g^2 score] dt + g sqrt(-dt) z, the reverse SDE (paper eq. 6) by Euler-Maruyama."""
  drift, diffusion = sde.reverse(score_fn).sde(x, t)
  x_mean = x + drift * dt
  return x_mean + bcast(diffusion, x) * jnp.sqrt(-dt) * jax.random.normal(key, x.shape, x.dtype), x_mean


def none_predictor(key, sde, score_fn, x, t, dt):
  """Identity: corrector-only sampling."""
  return x, x


def none_corrector(key, sde, score_fn, x, t, snr, n_steps):
  """Identity: predictor-only sampling."""
  return x, x


PREDICTORS.update(euler_maruyama=euler_maruyama_predictor, none=none_predictor)
CORRECTORS.update(none=none_corrector)

# Score evaluations a predictor / corrector makes per step.
PREDICTOR_NFE = {"euler_maruyama": 1, "none": 0}
CORRECTOR_NFE = {"none": 0}


def pc_sample(key, sde: LinearSDE, score_fn: ScoreFn, shape, *, predictor: str = "euler_maruyama",
              corrector: str = "none", snr: float = 0.16, n_steps: int = 1, num_steps: int = None,
              eps: float = 1e-3, denoise: bool = True):
  """Samples x ~ p_0 of shape `shape = (B, ...)` from x_T ~ prior, over `num_steps` (default N)
  uniform times from T to eps. Each step runs the corrector then the predictor at time t_i, as
  the 2021 release does (paper Alg. 2/3 write the predictor first; both orders target p_{t_i}).
  With `denoise`, returns the last predictor mean (no noise in the final step).
  Returns (x: shape, nfe: int).
  """
  predictor_fn = lookup(PREDICTORS, predictor, "predictor")
  corrector_fn = lookup(CORRECTORS, corrector, "corrector")
  num_steps = sde.N if num_steps is None else num_steps
  timesteps = jnp.linspace(sde.T, eps, num_steps)
  dt = -(sde.T - eps) / num_steps
  key, k0 = jax.random.split(key)
  x = sde.prior_sample(k0, shape)

  def step(carry, i):
    x, _ = carry
    t = jnp.full(shape[:1], timesteps[i])
    kc, kp = jax.random.split(jax.random.fold_in(key, i))
    x, x_mean = corrector_fn(kc, sde, score_fn, x, t, snr, n_steps)
    x, x_mean = predictor_fn(kp, sde, score_fn, x, t, dt)
    return (x, x_mean), None

  (x, x_mean), _ = jax.lax.scan(step, (x, x), jnp.arange(num_steps))
  nfe = num_steps * (PREDICTOR_NFE[predictor] + CORRECTOR_NFE[corrector] * n_steps)
  return (x_mean if denoise else x), nfe
