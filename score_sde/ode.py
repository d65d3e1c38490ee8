"""The probability-flow ODE solved on device with diffrax.

    dx/dt = f(t) x - 1/2 g(t)^2 score(x, t)        (paper eq. 13)

Integrating from t0 = eps to t1 = T encodes data into the latent x_T; from T to eps it samples
(or decodes). The whole solve is one `diffrax.diffeqsolve` call, traceable inside `jax.jit`;
on a sharded batch the step-size controller sees one global error norm, so every shard takes
the same steps.
"""

from typing import Optional, Tuple

import diffrax
import jax
import jax.numpy as jnp

from score_sde.registry import lookup
from score_sde.sde import LinearSDE, ScoreFn

# Solver class and score evaluations per step (FSAL methods reuse their last stage).
ODE_SOLVERS = {
  "euler": (diffrax.Euler, 1),
  "heun": (diffrax.Heun, 2),
  "midpoint": (diffrax.Midpoint, 2),
  "ralston": (diffrax.Ralston, 2),
  "bosh3": (diffrax.Bosh3, 3),
  "tsit5": (diffrax.Tsit5, 6),
  "dopri5": (diffrax.Dopri5, 6),
  "dopri8": (diffrax.Dopri8, 12),
}
ADAPTIVE = ("bosh3", "tsit5", "dopri5", "dopri8")
# Classic fixed-step Runge-Kutta 4 (diffrax has no solver of that name); run as a lax.scan.
FIXED_ONLY = {"rk4": 4}
ODE_METHODS = tuple(ODE_SOLVERS) + tuple(FIXED_ONLY)


def ode_solver(method: str):
  """(diffrax solver instance, score evaluations per step) for a method name."""
  cls, evals = lookup(ODE_SOLVERS, method, "ODE solver")
  return cls(), evals


def rk4_solve(vector_field, y0, t0: float, t1: float, num_steps, ts=None):
  """Classic RK4 with `num_steps` equal steps (or those of the grid `ts`, [num_steps + 1]):
  local error O(h^5), global O(h^4). 4 calls a step. Without `ts`, `num_steps` may be a traced
  integer: one compilation then serves every step count (e.g. a convergence study)."""
  if ts is None:
    time = lambda i: t0 + (t1 - t0) * i / num_steps  # t_i = t0 + i h, h = (t1 - t0) / num_steps
  else:
    time = lambda i: jnp.asarray(ts)[i]
  add = lambda y, k, c: jax.tree.map(lambda a, b: a + c * b, y, k)

  def step(i, y):
    t = time(i)
    h = time(i + 1) - t
    k1 = vector_field(t, y)
    k2 = vector_field(t + h / 2, add(y, k1, h / 2))
    k3 = vector_field(t + h / 2, add(y, k2, h / 2))
    k4 = vector_field(t + h, add(y, k3, h))
    return jax.tree.map(
      lambda y, a, b, c, d: y + h / 6 * (a + 2 * b + 2 * c + d), y, k1, k2, k3, k4
    )

  # A static step count lowers to a scan (differentiable); a traced one to a while loop.
  return jax.lax.fori_loop(0, num_steps, step, y0)


def solve(
  vector_field,
  y0,
  t0: float,
  t1: float,
  *,
  method: str = "tsit5",
  rtol: float = 1e-5,
  atol: float = 1e-5,
  num_steps: Optional[int] = None,
  max_steps: int = 8192,
  norm=None,
  ts=None,
  pcoeff: float = 0.0,
  icoeff: float = 1.0,
  return_stats: bool = False,
):
  """Integrates dy/dt = vector_field(t, y) from t0 to t1; returns (y1, number of vector-field calls).

  Adaptive methods use a PID controller with (rtol, atol) and coefficients (pcoeff, icoeff)
  unless `num_steps` is given, in which case every method takes `num_steps` steps: equal ones, or
  those of the grid `ts` ([num_steps + 1] from t0 to t1, e.g. a schedule); without `ts` the
  count may be a traced integer (at most `max_steps`). `y0` may be any pytree.
  `norm` (pytree of scaled errors -> scalar) replaces diffrax's RMS over the whole state, e.g.
  `per_sample_max_norm`. With `return_stats`, also {'accepted': ..., 'rejected': ...} steps.
  """
  if method in FIXED_ONLY:
    if num_steps is None:
      raise ValueError(
        f"ODE method {method!r} is fixed-step: give num_steps, or use one of {ADAPTIVE}"
      )
    y1 = rk4_solve(vector_field, y0, t0, t1, num_steps, ts)
    nfe = num_steps * FIXED_ONLY[method]
    stats = {"accepted": num_steps, "rejected": 0}
    return (y1, nfe, stats) if return_stats else (y1, nfe)
  if method not in ODE_SOLVERS:
    lookup(dict.fromkeys(ODE_METHODS), method, "ODE solver")
  # A traced step count (one compilation for every count) is the caller's to check.
  if num_steps is not None and not isinstance(num_steps, jax.Array) and num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  solver, evals = ode_solver(method)
  if num_steps is None:
    if method not in ADAPTIVE:
      raise ValueError(
        f"ODE method {method!r} is fixed-step: give num_steps, or use one of {ADAPTIVE}"
      )
    extra = {} if norm is None else {"norm": norm}
    controller = diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=pcoeff, icoeff=icoeff, **extra)
    dt0 = None
  elif ts is not None:
    controller, dt0 = diffrax.StepTo(ts=jnp.asarray(ts)), None
  else:
    controller = diffrax.ConstantStepSize()
    dt0 = (t1 - t0) / num_steps
  sol = diffrax.diffeqsolve(
    diffrax.ODETerm(lambda t, y, args: vector_field(t, y)),
    solver,
    t0=t0,
    t1=t1,
    dt0=dt0,
    y0=y0,
    stepsize_controller=controller,
    max_steps=max_steps,
    saveat=diffrax.SaveAt(t1=True),
  )
  y1 = jax.tree.map(lambda v: v[-1], sol.ys)
  fsal = 1 if evals in (3, 6) else 0  # FSAL solvers evaluate once more at the start.
  # Rejected steps cost their stages too: every step tried counts.
  nfe = sol.stats["num_steps"] * evals + fsal
  stats = {"accepted": sol.stats["num_accepted_steps"], "rejected": sol.stats["num_rejected_steps"]}
  return (y1, nfe, stats) if return_stats else (y1, nfe)


def per_sample_max_norm(err) -> jax.Array:
  """max over samples of each sample's RMS scaled error; every leaf has a leading batch axis.

  diffrax's default RMS over the whole batch dilutes one sample's error by sqrt(batch size), so a
  hard sample can miss the tolerance; this norm holds every sample to rtol/atol. It is still ONE
  number for the batch, so all shards of a sharded batch keep taking the same steps.
  """
  leaves = jax.tree.leaves(err)
  b = leaves[0].shape[0]
  sq = sum(jnp.sum(jnp.abs(v.reshape(b, -1)) ** 2, axis=-1) for v in leaves)
  count = sum(v[0].size for v in leaves)
  return jnp.sqrt(jnp.max(sq) / count)


def probability_flow_drift(sde: LinearSDE, score_fn: ScoreFn):
  """vector_field(t: scalar, x: [B, ...]) of the probability-flow ODE."""
  rsde = sde.reverse(score_fn, probability_flow=True)

  def field(t, x):
    return rsde.sde(x, jnp.full(x.shape[:1], t, dtype=x.dtype))[0]

  return field


def solve_probability_flow(
  sde: LinearSDE, score_fn: ScoreFn, x: jax.Array, t0: float, t1: float, **solver_kwargs
) -> Tuple[jax.Array, jax.Array]:
  """Carries x: [B, ...] at time t0 to time t1 along the probability-flow ODE; returns (x1, nfe)."""
  return solve(probability_flow_drift(sde, score_fn), x, t0, t1, **solver_kwargs)
