"""DDIM (Song, Meng & Ermon 2021) written for any Gaussian path x_t = a(t) x0 + s(t) eps.

From t to t' < t, with eps_hat = -s(t) score(x, t) and x0_hat = (x - s(t) eps_hat) / a(t):

    x_{t'} = a' x0_hat + sqrt(s'^2 - c^2) eps_hat + c z,
    c^2 = eta^2 s'^2 (s^2 - (a / a')^2 s'^2) / s^2               (DDIM eqs. 12 and 16)

c^2 at eta = 1 is the variance of q(x_{t'} | x_t, x0): ancestral sampling (DDPM for VP, SMLD's
reverse chain for VE); eta = 0 is deterministic, a first-order solver of the probability-flow ODE.
"""

import jax
import jax.numpy as jnp

from score_sde.sampling import schedules
from score_sde.sampling.base import LoopSampler, project_at, projection_key, run_loop, start
from score_sde.sampling.ode_sampler import tweedie_denoise
from score_sde.sde import LinearSDE, ScoreFn


def check(sde: LinearSDE, num_steps: int = 50, eta: float = 0.0, **_):
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  if eta < 0:
    raise ValueError(f"eta must be >= 0, got {eta}")


def ddim_loop(
  sde: LinearSDE,
  score_fn: ScoreFn,
  shape,
  *,
  num_steps: int = 50,
  eta: float = 0.0,
  eps: float = 1e-3,
  schedule: str = "uniform",
  rho: float = 7.0,
  denoise: bool = False,
  x_init=None,
  project=None,
) -> LoopSampler:
  """num_steps DDIM steps over the `schedule` grid T = t_0 > ... > t_n = eps, from x_T (the
  prior draw of `key`, or `x_init`; see `base`); step i's noise from fold_in(key_loop, i), none
  at eta = 0. With `denoise` the last step returns x0_hat at t_eps instead (one more NFE).
  `project` (see `base`) is applied to x_T and after every step (noise-free after the x0_hat).
  Returns a LoopSampler: (x: shape, nfe = num_steps (+ 1)).
  """
  check(sde, num_steps, eta)
  ts = schedules.time_grid(sde, num_steps, eps, schedule, rho=rho)

  def step(key, x, i):
    t = jnp.full(shape[:1], ts[i], x.dtype)
    a, s = sde.alpha_sigma(ts[i])
    a_next, s_next = sde.alpha_sigma(ts[i + 1])
    eps_hat = -s * score_fn(x, t)
    x0_hat = (x - s * eps_hat) / a
    if eta == 0:  # deterministic: no noise drawn
      return a_next * x0_hat + s_next * eps_hat
    c2 = eta**2 * s_next**2 * (s**2 - (a / a_next) ** 2 * s_next**2) / s**2
    c2 = jnp.clip(c2, 0.0, s_next**2)
    z = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
    return a_next * x0_hat + jnp.sqrt(s_next**2 - c2) * eps_hat + jnp.sqrt(c2) * z

  def run(carry, idx):
    def body(carry, i):
      key, x = carry
      x = step(key, x, i)
      x = project_at(project, x, ts[i + 1], projection_key(key, i + 1))
      if denoise:
        x = jax.lax.cond(
          i == num_steps - 1,
          lambda v: project_at(
            project,
            tweedie_denoise(sde, score_fn, v, jnp.full(shape[:1], ts[-1], v.dtype)),
            ts[-1],
            None,
          ),
          lambda v: v,
          x,
        )
      return (key, x), None

    return jax.lax.scan(body, carry, idx)[0]

  nfe = num_steps + int(denoise)

  def init(key):
    key, x = start(key, sde, shape, x_init)
    return key, project_at(project, x, ts[0], projection_key(key, 0))

  return LoopSampler(init, run, lambda c: (c[1], nfe), num_steps, nfe)


def ddim_sample(
  key,
  sde: LinearSDE,
  score_fn: ScoreFn,
  shape,
  *,
  num_steps: int = 50,
  eta: float = 0.0,
  eps: float = 1e-3,
  schedule: str = "uniform",
  rho: float = 7.0,
  denoise: bool = False,
  x_init=None,
  project=None,
):
  """DDIM samples of `shape`; see `ddim_loop`. Returns (x: shape, nfe)."""
  return run_loop(
    ddim_loop(
      sde,
      score_fn,
      shape,
      num_steps=num_steps,
      eta=eta,
      eps=eps,
      schedule=schedule,
      rho=rho,
      denoise=denoise,
      x_init=x_init,
      project=project,
    ),
    key,
  )
