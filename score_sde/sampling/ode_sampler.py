"""Sampling by the probability-flow ODE (paper section 4.3, eq. 13):

    dx/dt = f(t) x - 1/2 g(t)^2 score(x, t),   from x_T ~ p_T at t = T down to t = eps,

solved on device by `score_sde.ode.solve` (diffrax adaptive solvers with an rtol/atol PID
controller, or fixed-step euler / heun / midpoint / rk4). The map x_T -> x_eps is deterministic
and invertible (encoding runs the same ODE from eps to T).
"""
import jax

from score_sde import ode
from score_sde.registry import lookup
from score_sde.sampling.base import project_at, projection_key, start
from score_sde.sde import LinearSDE, ScoreFn, bcast


def tweedie_denoise(sde: LinearSDE, score_fn: ScoreFn, x, t):
  """E[x0 | x_t] = (x_t + s(t)^2 score(x_t, t)) / a(t) (Tweedie's formula); one score evaluation."""
  a, s = sde.alpha_sigma(t)
  return (x + bcast(s ** 2, x) * score_fn(x, t)) / bcast(a, x)


def check(sde: LinearSDE, method: str = "tsit5", num_steps=None, project=None, **_):
  if method not in ode.ODE_METHODS:
    lookup(dict.fromkeys(ode.ODE_METHODS), method, "ODE solver")
  if method not in ode.ADAPTIVE and num_steps is None:
    raise ValueError(f"ODE method {method!r} is fixed-step: set num_steps (sampling.num_steps)")
  if num_steps is not None and num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  if project is not None and num_steps is None:
    raise ValueError("a projection (inpainting, colorization) acts between steps: the ODE solve "
                     "needs fixed steps, set num_steps (sampling.num_steps)")


def nfe_per_step(method: str = "tsit5", **_):
  """Score evaluations per step of a fixed-step solve (None: adaptive, known after the solve)."""
  if method in ode.FIXED_ONLY:
    return ode.FIXED_ONLY[method]
  return ode.ODE_SOLVERS[method][1] if method not in ode.ADAPTIVE else None


def ode_sample(key, sde: LinearSDE, score_fn: ScoreFn, shape, *, method: str = "tsit5",
               rtol: float = 1e-5, atol: float = 1e-5, num_steps=None, eps: float = 1e-3,
               denoise: bool = False, x_init=None, project=None):
  """x_T (prior draw of `key`, or `x_init`; see `base`), carried to t = eps along the
  probability-flow ODE. Adaptive `method`s use (rtol, atol) unless `num_steps` is given;
  fixed-step methods need `num_steps` (uniform in t). With `denoise`, the result is Tweedie's
  E[x0 | x_eps] (one extra NFE). With `project` (see `base`; needs `num_steps`) the solve runs
  step by step on a grid uniform in t, projecting x_T and the state after every step.
  Returns (x: shape, nfe: int array).
  """
  key, x = start(key, sde, shape, x_init)
  if project is None:
    x, nfe = ode.solve_probability_flow(sde, score_fn, x, sde.T, eps, method=method, rtol=rtol,
                                        atol=atol, num_steps=num_steps)
  else:
    check(sde, method, num_steps, project)
    ts = jax.numpy.linspace(sde.T, eps, num_steps + 1)
    x = project_at(project, x, ts[0], projection_key(key, 0))

    def step(x, i):
      x, nfe = ode.solve_probability_flow(sde, score_fn, x, ts[i], ts[i + 1], method=method,
                                          num_steps=1)
      return project_at(project, x, ts[i + 1], projection_key(key, i + 1)), nfe
    x, nfes = jax.lax.scan(step, x, jax.numpy.arange(num_steps))
    nfe = jax.numpy.sum(nfes)
  if denoise:
    t = jax.numpy.full(shape[:1], eps, x.dtype)
    x, nfe = tweedie_denoise(sde, score_fn, x, t), nfe + 1
  return x, nfe
