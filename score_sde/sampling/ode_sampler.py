"""Sampling by the probability-flow ODE (paper section 4.3, eq. 13):

    dx/dt = f(t) x - 1/2 g(t)^2 score(x, t),   from x_T ~ p_T at t = T down to t = eps,

solved on device by `score_sde.ode.solve` (diffrax adaptive solvers with an rtol/atol PID
controller, or fixed-step euler / heun / midpoint / rk4). The map x_T -> x_eps is deterministic
and invertible (encoding runs the same ODE from eps to T).
"""

import jax
import jax.numpy as jnp

from score_sde import ode
from score_sde.registry import lookup
from score_sde.sampling import schedules
from score_sde.sampling.base import LoopSampler, project_at, projection_key, start
from score_sde.sde import LinearSDE, ScoreFn, bcast

FIXED_STEP_SCHEDULE = "karras"  # the grid of a fixed-step solve when none is given (ode_loop)


def tweedie_denoise(sde: LinearSDE, score_fn: ScoreFn, x, t):
  """E[x0 | x_t] = (x_t + s(t)^2 score(x_t, t)) / a(t) (Tweedie's formula); one score evaluation."""
  a, s = sde.alpha_sigma(t)
  return (x + bcast(s**2, x) * score_fn(x, t)) / bcast(a, x)


def check(sde: LinearSDE, method: str = "tsit5", num_steps=None, project=None, segments=1, **_):
  if method not in ode.ODE_METHODS:
    lookup(dict.fromkeys(ode.ODE_METHODS), method, "ODE solver")
  if method not in ode.ADAPTIVE and num_steps is None:
    raise ValueError(f"ODE method {method!r} is fixed-step: set num_steps (sampling.num_steps)")
  if num_steps is not None and num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  if segments < 1:
    raise ValueError(f"ode_segments must be >= 1, got {segments}")
  if project is not None and num_steps is None:
    raise ValueError(
      "a projection (inpainting, colorization) acts between steps: the ODE solve "
      "needs fixed steps, set num_steps (sampling.num_steps)"
    )


def nfe_per_step(method: str = "tsit5", **_):
  """Score evaluations per step of a fixed-step solve (None: adaptive, known after the solve)."""
  if method in ode.FIXED_ONLY:
    return ode.FIXED_ONLY[method]
  return ode.ODE_SOLVERS[method][1] if method not in ode.ADAPTIVE else None


def ode_loop(
  sde: LinearSDE,
  score_fn: ScoreFn,
  shape,
  *,
  method: str = "tsit5",
  rtol: float = 1e-5,
  atol: float = 1e-5,
  num_steps=None,
  eps: float = 1e-3,
  denoise: bool = False,
  schedule: str = FIXED_STEP_SCHEDULE,
  rho: float = 7.0,
  per_sample: bool = True,
  pcoeff: float = 0.0,
  icoeff: float = 1.0,
  segments: int = 1,
  x_init=None,
  project=None,
) -> LoopSampler:
  """The probability-flow solve from T to eps as a loop (for a progress bar between pieces).

  Fixed-step (`num_steps` given): loop step i is the solver's step from t_i to t_{i+1} of the
  `schedule` grid: by default EDM's (`karras`, sigma_i^(1/rho) uniform, rho = 7), which Karras
  et al. (2022, section 3) found best for Heun's method on every path; `uniform` in t is the grid
  of the 2021 release's fixed-step samplers (it had none for the ODE), and spends few steps at
  small t: on the digits VP model, Heun 25 steps gives digits FD 7.89 on it against 7.05 on
  EDM's (experiments/results/reproduce_digits.md).
  Adaptive: loop step k solves segment k of `segments` pieces of [eps, T], equal in log-SNR (the
  controller restarts at each boundary: segments = 1 is the one uninterrupted solve). The
  controller's error norm is the largest per-sample RMS (`ode.per_sample_max_norm`) unless
  `per_sample=False` (diffrax's RMS over the whole batch, which lets one sample miss the tolerance
  and makes the steps depend on the batch size). With `denoise`, the result is Tweedie's
  E[x0 | x_eps] (one more NFE). The carry counts NFE and accepted / rejected steps. `project`
  (see `base`; needs fixed steps) is applied to x_T and after every step.
  """
  check(sde, method, num_steps, project, segments)
  fixed = num_steps is not None
  if fixed:
    bounds = schedules.time_grid(sde, num_steps, eps, schedule, rho=rho)
  else:
    bounds = schedules.time_grid(sde, segments, eps, "log_snr")
  n = len(bounds) - 1
  field = ode.probability_flow_drift(sde, score_fn)
  norm = ode.per_sample_max_norm if per_sample else None

  def init(key):
    key, x = start(key, sde, shape, x_init)
    x = project_at(project, x, bounds[0], projection_key(key, 0))
    zero = jnp.zeros((), jnp.int32)
    return key, x, zero, zero, zero

  def run(carry, idx):
    def body(carry, i):
      key, x, nfe, acc, rej = carry
      # A fixed step lands exactly on t_{i+1} (StepTo): t0 + dt0 can round past or short of it.
      x, used, stats = ode.solve(
        field,
        x,
        bounds[i],
        bounds[i + 1],
        method=method,
        rtol=rtol,
        atol=atol,
        num_steps=1 if fixed else None,
        norm=norm,
        ts=jax.lax.dynamic_slice(bounds, (i,), (2,)) if fixed else None,
        pcoeff=pcoeff,
        icoeff=icoeff,
        return_stats=True,
      )
      x = project_at(project, x, bounds[i + 1], projection_key(key, i + 1))
      if denoise:
        x = jax.lax.cond(
          i == n - 1,
          lambda v: project_at(
            project,
            tweedie_denoise(sde, score_fn, v, jnp.full(shape[:1], bounds[-1], v.dtype)),
            bounds[-1],
            None,
          ),
          lambda v: v,
          x,
        )
        used = used + (i == n - 1)
      return (key, x, nfe + used, acc + stats["accepted"], rej + stats["rejected"]), None

    return jax.lax.scan(body, carry, idx)[0]

  per = nfe_per_step(method)
  known = None if per is None else per * n + int(denoise)
  # FSAL solvers (bosh3, tsit5, ...) evaluate once more at the start of each solve: the carry's
  # count is the true one.
  return LoopSampler(init, run, lambda c: (c[1], c[2]), n, known)


def ode_sample(
  key,
  sde: LinearSDE,
  score_fn: ScoreFn,
  shape,
  *,
  method: str = "tsit5",
  rtol: float = 1e-5,
  atol: float = 1e-5,
  num_steps=None,
  eps: float = 1e-3,
  denoise: bool = False,
  schedule: str = FIXED_STEP_SCHEDULE,
  rho: float = 7.0,
  per_sample: bool = True,
  pcoeff: float = 0.0,
  icoeff: float = 1.0,
  segments: int = 1,
  x_init=None,
  project=None,
  return_stats: bool = False,
):
  """x_T (prior draw of `key`, or `x_init`; see `base`), carried to t = eps along the
  probability-flow ODE; see `ode_loop` for the options. Returns (x: shape, nfe: int array), and
  with `return_stats` also {'accepted', 'rejected'} step counts.
  """
  loop = ode_loop(
    sde,
    score_fn,
    shape,
    method=method,
    rtol=rtol,
    atol=atol,
    num_steps=num_steps,
    eps=eps,
    denoise=denoise,
    schedule=schedule,
    rho=rho,
    per_sample=per_sample,
    pcoeff=pcoeff,
    icoeff=icoeff,
    segments=segments,
    x_init=x_init,
    project=project,
  )
  carry = loop.run(loop.init(key), jnp.arange(loop.num_steps))
  if return_stats:
    return carry[1], carry[2], {"accepted": carry[3], "rejected": carry[4]}
  return carry[1], carry[2]
