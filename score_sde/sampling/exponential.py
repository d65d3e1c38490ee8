"""Exponential-integrator solvers of the probability-flow ODE for any Gaussian path of the package.

For x_t = a(t) x0 + s(t) eps, in the log-SNR lambda = log(a / s), the probability-flow ODE
(paper eq. 13) is semi-linear and its linear part integrates exactly (Lu et al. 2022a, eq. 3.4;
Lu et al. 2022b, eq. 8). From lambda_i to lambda_{i+1} = lambda_i + h:

    noise prediction:  x' = (a'/a) x - s' int_0^h e^{h - tau} eps_hat(lambda_i + tau) dtau
    data prediction:   x' = (s'/s) x + a' int_0^h e^{tau - h} x0_hat(lambda_i + tau) dtau

(primes: at t_{i+1}). The solvers differ only in the polynomial P(tau) that stands in for the
prediction under the integral: with P interpolating the values m_j at nodes tau_j = r_j h,

    int_0^h e^{z (1 - tau / h)} P(tau) dtau = h sum_j w_j m_j,
    w_j = sum_k c_jk k! phi_{k+1}(z),   L_j(r) = sum_k c_jk r^k (Lagrange basis on the r_j),

phi_k(z) = sum_{n >= 0} z^n / (n + k)! (phi_1 = (e^z - 1) / z), z = h (noise) or -h (data).

  * DPM-Solver (Lu et al. 2022a), noise prediction: order 1 (= DDIM, eta = 0), singlestep 2 and
    3 (intermediate points at lambda_i + h/2, resp. + h/3 and + 2h/3, the paper's Algorithms 1
    and 2 with the phi_2 weights), and multistep 2 and 3 (nodes at the previous steps).
  * DPM-Solver++ (Lu et al. 2022b), data prediction: 2M is eq. (24) there,
        x' = (s'/s) x - a' (e^{-h} - 1) [(1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}],  r = h_{i-1} / h,
    when the phi_2 term is replaced by its leading order (as that paper does); here every
    multistep order integrates the interpolation polynomial exactly (3M: quadratic through the
    last three values). The SDE variant (SDE-DPM-Solver++, that paper's section 5) integrates
        x' = (s'/s) e^{-h} x + 2 a' int_0^h e^{2 (tau - h)} x0_hat dtau + s' sqrt(1 - e^{-2h}) z.
  * UniPC (Zhao et al. 2023): predictor UniP-p = the data-prediction multistep step of order p;
    corrector UniC-p, applied once the prediction at the new point is known (no extra NFE):
    the same step recomputed with that value added as a node at r = 1 (order p + 1). The weights
    are those of exact integration (the paper's varying-coefficient form), not its B(h) fit.
  * LMS (Adams-Bashforth of order p with variable steps, k-diffusion's `lms`) in the EDM variable
    x_hat = x / a: dx_hat / dsigma = (x_hat - x0_hat) / sigma, the Lagrange polynomial of the last
    p slopes integrated exactly over [sigma_i, sigma_{i+1}].

Every network target reaches the solvers as a score; x0_hat and eps_hat come from it through
`score_sde.targets` (x0 = (x + s^2 score) / a, eps = -s score). The grid is a schedule of
`schedules` (a name, or a file written by `optimize_schedule`), num_steps steps from T to t_eps;
multistep methods start at order 1 and raise the order as values accumulate, and with
`lower_order_final` use order <= (steps left) at the end (as the DPM-Solver authors do). With
`denoise`, the result is x0_hat at t_eps (one more NFE; this is the final step to sigma = 0 of
k-diffusion's samplers). Key rule and `x_init`: see `base`.
"""

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from score_sde import targets
from score_sde.sampling import schedules
from score_sde.sampling.base import LoopSampler, project_at, projection_key, run_loop, start
from score_sde.sde import LinearSDE, ScoreFn


# --- weights ------------------------------------------------------------------------------------
def phi(k: int, z):
  """phi_k(z) = sum_{n >= 0} z^n / (n + k)!, k >= 1: the series for |z| < 1, else the closed form
  phi_1 = expm1(z) / z, phi_{k+1} = (phi_k - 1 / k!) / z (both accurate there)."""
  z = jnp.asarray(z)
  small = jnp.abs(z) < 1.0
  zs = jnp.where(small, z, 0.0)
  series = sum(zs**n / float(math.factorial(n + k)) for n in range(12))
  zl = jnp.where(small, 1.0, z)
  closed = jnp.expm1(zl) / zl
  for j in range(1, k):
    closed = (closed - 1.0 / math.factorial(j)) / zl
  return jnp.where(small, series, closed)


def lagrange_monomials(nodes):
  """Monomial coefficients of the Lagrange basis on `nodes` (p scalars): c[j][k] with
  L_j(r) = sum_k c[j][k] r^k. Written out (no linear solve) so that it traces into a loop."""
  out = []
  for j, rj in enumerate(nodes):
    poly, denom = [1.0], 1.0
    for m, rl in enumerate(nodes):
      if m == j:
        continue
      new = [0.0] * (len(poly) + 1)
      for k, c in enumerate(poly):  # poly * (r - r_l)
        new[k + 1] = new[k + 1] + c
        new[k] = new[k] - c * rl
      poly, denom = new, denom * (rj - rl)
    out.append([c / denom for c in poly])
  return out


def exp_weights(nodes, z, weights: str = "exact"):
  """w_j with int_0^1 e^{z (1 - r)} P(r) dr = sum_j w_j P(r_j) for P of degree < len(nodes).

  weights='published': the linear term's moment phi_2(z) is replaced by phi_1(z) / 2, its leading
  order, as in the published DPM-Solver-2 / DPM-Solver++(2M) updates (exactly those at order 2).
  """
  moments = [math.factorial(k) * phi(k + 1, z) for k in range(len(nodes))]
  if weights == "published" and len(moments) > 1:
    moments[1] = 0.5 * moments[0]
  return [sum(c * m for c, m in zip(cj, moments)) for cj in lagrange_monomials(nodes)]


def poly_weights(nodes):
  """w_j with int_0^1 P(r) dr = sum_j w_j P(r_j) (Adams weights, for LMS)."""
  return [sum(c / (k + 1) for k, c in enumerate(cj)) for cj in lagrange_monomials(nodes)]


def _combine(weights, values):
  return sum(w * v for w, v in zip(weights, values))


# --- predictions -------------------------------------------------------------------------------
def predict(sde: LinearSDE, score_fn: ScoreFn, x, t, target: str):
  """x0_hat or eps_hat (`target`) at x_t = x, time t (scalar), from the score via `targets`."""
  tb = jnp.full(x.shape[:1], t, x.dtype)
  return targets.convert(score_fn(x, tb), x, targets.path_coeffs(sde, tb), "score", target)


class _Grid:
  """The time grid and its coefficients: t, a, s, lambda, sigma = s / a, each [num_steps + 1]."""

  def __init__(self, sde: LinearSDE, num_steps: int, eps: float, schedule: str, rho: float):
    self.t = schedules.time_grid(sde, num_steps, eps, schedule, rho=rho)
    self.a, self.s = sde.alpha_sigma(self.t)
    self.a = jnp.broadcast_to(self.a, self.t.shape)
    self.lam = sde.log_snr(self.t)
    self.sigma = self.s / self.a


def check(
  sde: LinearSDE,
  num_steps: int = 10,
  order: int = 2,
  max_order: int = 3,
  weights: str = "exact",
  **_,
):
  if num_steps is None or num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  if weights not in ("exact", "published"):
    raise ValueError(f"weights must be 'exact' or 'published', got {weights!r}")
  if not 1 <= order <= max_order:
    raise ValueError(f"order must be in 1..{max_order}, got {order}")


def nfe_per_step(order: int = 2, multistep: bool = True, **_):
  """Score evaluations per step: 1 for multistep methods, `order` for singlestep DPM-Solver."""
  return 1 if multistep else order


# --- multistep family (DPM-Solver-M, DPM-Solver++ M / SDE, UniPC, LMS) ---------------------
def _orders(n: int, order: int, lower_order_final: bool) -> np.ndarray:
  """Order of each step: min(order, values so far) (and <= steps left with lower_order_final)."""
  i = np.arange(n)
  q = np.minimum(i + 1, order)
  return np.minimum(q, n - i) if lower_order_final else q


def _history_weights(v, order: int, q: np.ndarray, z_of_h, weights: str, new_node: bool):
  """W: [n, order (+1)], the weights of the values at steps i, i-1, ... (the first column: the
  value at step i + 1 when `new_node`, the corrector) for the step from v_i to v_{i+1}, with q_i
  history values; `v` the grid variable (lambda, or sigma for LMS), `z_of_h` None for the
  polynomial (LMS) weights. Computed for all steps at once, before the loop."""
  n = len(q)
  i = np.arange(n)
  h = v[1:] - v[:-1]
  cols = []
  for qq in range(1, order + 1):
    # Nodes before the grid's start are never used (q_i <= i + 1); distinct dummies keep the
    # unused weights finite (so are their gradients).
    nodes = [
      jnp.where(i - k >= 0, (v[np.maximum(i - k, 0)] - v[:-1]) / h, -1e3 * (k + 1))
      for k in range(qq)
    ]
    if new_node:
      nodes = [jnp.ones_like(h)] + nodes
    w = poly_weights(nodes) if z_of_h is None else exp_weights(nodes, z_of_h(h), weights)
    w = [jnp.broadcast_to(wk, h.shape) for wk in w]
    w = w + [jnp.zeros_like(h)] * (order + int(new_node) - len(w))
    cols.append(jnp.stack(w, axis=1))
  return jnp.select([jnp.asarray(q == qq)[:, None] for qq in range(1, order + 1)], cols)


def multistep_loop(
  sde: LinearSDE,
  score_fn: ScoreFn,
  shape,
  *,
  variant: str,
  order: int,
  num_steps: int,
  eps: float,
  schedule: str,
  rho: float = 7.0,
  corrector: bool = False,
  lower_order_final: bool = True,
  denoise: bool = False,
  weights: str = "exact",
  x_init=None,
  project=None,
) -> LoopSampler:
  """The multistep loop shared by the solvers of this module; `variant` is one of
  'eps' (DPM-Solver), 'x0' (DPM-Solver++, UniPC), 'x0_sde' (SDE-DPM-Solver++), 'lms'.

  Step i evaluates the prediction m_i at (x_i, t_i) (1 NFE), corrects x_i with it when
  `corrector` (UniC), then steps to t_{i+1} with the last q_i values, q_i = min(order, i + 1)
  (and <= num_steps - i with `lower_order_final`):

      x_{i+1} = A_i x_i + S_i sum_k W_ik m_{i-k}

  (A_i, S_i from the module docstring; for LMS A_i = a_{i+1} / a_i, S_i = a_{i+1} h_i in sigma).
  The weights depend on the grid only and are computed before the loop. `project` (see `base`)
  is applied to x_T, after every step and after the corrector (noise-free after a final x0_hat).
  """
  g = _Grid(sde, num_steps, eps, schedule, rho)
  target = "eps" if variant == "eps" else "x0"
  n = num_steps
  q = _orders(n, order, lower_order_final)
  a0, a1, s0, s1 = g.a[:-1], g.a[1:], g.s[:-1], g.s[1:]
  if variant == "lms":
    h = g.sigma[1:] - g.sigma[:-1]
    z_of_h, A, S = None, a1 / a0, a1 * h
    v = g.sigma
  else:
    h = g.lam[1:] - g.lam[:-1]
    v = g.lam
    z_of_h, A, S = {
      "eps": (lambda h: h, a1 / a0, -s1 * h),
      "x0": (lambda h: -h, s1 / s0, a1 * h),
      "x0_sde": (lambda h: -2.0 * h, s1 / s0 * jnp.exp(-h), 2.0 * a1 * h),
    }[variant]
  W = _history_weights(v, order, q, z_of_h, weights, new_node=False)
  if corrector:  # UniC for the step i -> i + 1 once m_{i+1} is known: q_i old values + the new
    Wc = _history_weights(v, order, q, z_of_h, weights, new_node=True)
  if variant == "x0_sde":
    noise_std = s1 * jnp.sqrt(-jnp.expm1(-2.0 * h))

  def value(x, i):
    m = predict(sde, score_fn, x, g.t[i], target)
    if variant == "lms":  # the slope dx_hat/dsigma = (x_hat - x0_hat) / sigma
      m = (x / g.a[i] - m) / g.sigma[i]
    return m

  def combine(w, ms):
    return jnp.tensordot(w.astype(ms.dtype), ms, axes=1)

  def init(key):
    key, x = start(key, sde, shape, x_init)
    x = project_at(project, x, g.t[0], projection_key(key, 0))
    return key, x, x, jnp.zeros((order,) + tuple(shape), x.dtype)

  def run(carry, idx):
    def body(carry, i):
      key, x, x_prev, ms = carry
      m = value(x, i)
      if corrector:
        j = jnp.maximum(i - 1, 0)
        x_c = A[j] * x_prev + S[j] * (Wc[j, 0] * m + combine(Wc[j, 1:], ms))
        x_c = project_at(project, x_c, g.t[i], projection_key(key, i, 1))
        x = jnp.where(i > 0, x_c, x)
      ms = jnp.concatenate([m[None], ms[:-1]], axis=0)
      x_next = A[i] * x + S[i] * combine(W[i], ms)
      if variant == "x0_sde":
        z = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
        x_next = x_next + noise_std[i] * z
      x_next = project_at(project, x_next, g.t[i + 1], projection_key(key, i + 1))
      if denoise:
        x_next = jax.lax.cond(
          i == n - 1,
          lambda v: project_at(project, predict(sde, score_fn, v, g.t[n], "x0"), g.t[n], None),
          lambda v: v,
          x_next,
        )
      return (key, x_next, x, ms), None

    return jax.lax.scan(body, carry, idx)[0]

  def output(carry):
    return carry[1], n + int(denoise)

  return LoopSampler(init, run, output, n, n + int(denoise))


def singlestep_loop(
  sde: LinearSDE,
  score_fn: ScoreFn,
  shape,
  *,
  variant: str,
  order: int,
  num_steps: int,
  eps: float,
  schedule: str,
  rho: float = 7.0,
  denoise: bool = False,
  weights: str = "exact",
  x_init=None,
  project=None,
) -> LoopSampler:
  """Singlestep DPM-Solver(++)-k: `order` evaluations per step, at lambda_i + r h with
  r = (0, 1/2) for order 2 and (0, 1/3, 2/3) for order 3 (Lu et al. 2022a, Algorithms 1, 2):

      u_1 = step over r_1 h from m_i (order 1);  order 3: u_2 = step over r_2 h from nodes (0, r_1);
      x'  = step over h from nodes (0, r_last) (a linear polynomial, third order for r = 2/3).
  """
  g = _Grid(sde, num_steps, eps, schedule, rho)
  target = "eps" if variant == "eps" else "x0"
  rs = {1: [], 2: [0.5], 3: [1.0 / 3.0, 2.0 / 3.0]}[order]
  n = num_steps

  def sub(x, i, lam_to, nodes, values, a_to=None, s_to=None):
    h = lam_to - g.lam[i]
    if a_to is None:
      a_to, s_to = sde.alpha_sigma(sde.t_of_log_snr(lam_to))
    if variant == "eps":
      return a_to / g.a[i] * x - s_to * h * _combine(exp_weights(nodes, h, weights), values)
    return s_to / g.s[i] * x + a_to * h * _combine(exp_weights(nodes, -h, weights), values)

  def init(key):
    key, x = start(key, sde, shape, x_init)
    return key, project_at(project, x, g.t[0], projection_key(key, 0))

  def run(carry, idx):
    def body(carry, i):
      key, x = carry
      h = g.lam[i + 1] - g.lam[i]
      m0 = predict(sde, score_fn, x, g.t[i], target)
      ms, nodes = [m0], [0.0]
      for k, r in enumerate(rs):
        lam_r = g.lam[i] + r * h
        use = [0, k] if k > 0 else [0]
        u = sub(x, i, lam_r, [nodes[j] / r for j in use], [ms[j] for j in use])
        ms.append(predict(sde, score_fn, u, sde.t_of_log_snr(lam_r), target))
        nodes.append(r)
      use = [0, len(ms) - 1] if rs else [0]
      # The grid's own end point (t_of_log_snr rounds): the next step starts from g.t[i + 1].
      x = sub(
        x, i, g.lam[i + 1], [nodes[j] for j in use], [ms[j] for j in use], g.a[i + 1], g.s[i + 1]
      )
      x = project_at(project, x, g.t[i + 1], projection_key(key, i + 1))
      if denoise:
        x = jax.lax.cond(
          i == n - 1,
          lambda v: project_at(project, predict(sde, score_fn, v, g.t[n], "x0"), g.t[n], None),
          lambda v: v,
          x,
        )
      return (key, x), None

    return jax.lax.scan(body, carry, idx)[0]

  nfe = order * n + int(denoise)
  return LoopSampler(init, run, lambda c: (c[1], nfe), n, nfe)


# --- public samplers ---------------------------------------------------------------------------
def dpm_solver_loop(
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 3,
  multistep: bool = True,
  eps: float = 1e-3,
  schedule: str = "log_snr",
  rho: float = 7.0,
  lower_order_final: bool = True,
  denoise: bool = False,
  weights: str = "exact",
  x_init=None,
  project=None,
) -> LoopSampler:
  """DPM-Solver (Lu et al. 2022a), noise prediction, orders 1-3, multistep or singlestep.
  Order 1: x' = (a'/a) x - s' (e^h - 1) eps_hat (= DDIM at eta = 0). NFE = num_steps (multistep)
  or order * num_steps (singlestep), + 1 with `denoise`."""
  check(sde, num_steps, order, weights=weights)
  kw = dict(
    variant="eps",
    order=order,
    num_steps=num_steps,
    eps=eps,
    schedule=schedule,
    rho=rho,
    denoise=denoise,
    weights=weights,
    x_init=x_init,
    project=project,
  )
  if multistep or order == 1:
    return multistep_loop(sde, score_fn, shape, lower_order_final=lower_order_final, **kw)
  return singlestep_loop(sde, score_fn, shape, **kw)


def dpm_solver_pp_loop(
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 2,
  multistep: bool = True,
  eps: float = 1e-3,
  schedule: str = "karras",
  rho: float = 7.0,
  lower_order_final: bool = True,
  denoise: bool = False,
  weights: str = "exact",
  x_init=None,
  project=None,
) -> LoopSampler:
  """DPM-Solver++ (Lu et al. 2022b), data prediction: 1, 2M, 3M (or singlestep 2S, 3S).
  Order 1: x' = (s'/s) x - a' (e^{-h} - 1) x0_hat;  2M / 3M: see the module docstring."""
  check(sde, num_steps, order, weights=weights)
  kw = dict(
    variant="x0",
    order=order,
    num_steps=num_steps,
    eps=eps,
    schedule=schedule,
    rho=rho,
    denoise=denoise,
    weights=weights,
    x_init=x_init,
    project=project,
  )
  if multistep or order == 1:
    return multistep_loop(sde, score_fn, shape, lower_order_final=lower_order_final, **kw)
  return singlestep_loop(sde, score_fn, shape, **kw)


def dpm_solver_pp_sde_loop(
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 2,
  eps: float = 1e-3,
  schedule: str = "karras",
  rho: float = 7.0,
  lower_order_final: bool = True,
  denoise: bool = True,
  x_init=None,
  project=None,
) -> LoopSampler:
  """SDE-DPM-Solver++ (1 or 2M; Lu et al. 2022b, section 5): a reverse-SDE sampler,
      x' = (s'/s) e^{-h} x + a' (1 - e^{-2h}) x0_hat + s' sqrt(1 - e^{-2h}) z    (order 1),
  noise of step i from fold_in(key_loop, i)."""
  check(sde, num_steps, order, max_order=2)
  return multistep_loop(
    sde,
    score_fn,
    shape,
    variant="x0_sde",
    order=order,
    num_steps=num_steps,
    eps=eps,
    schedule=schedule,
    rho=rho,
    lower_order_final=lower_order_final,
    denoise=denoise,
    x_init=x_init,
    project=project,
  )


def unipc_loop(
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 3,
  eps: float = 1e-3,
  schedule: str = "karras",
  rho: float = 7.0,
  lower_order_final: bool = True,
  denoise: bool = False,
  x_init=None,
  project=None,
) -> LoopSampler:
  """UniPC-p (Zhao et al. 2023), data prediction: UniP-p predictor and UniC corrector (order
  p + 1, using the prediction at the new point that the next step needs anyway). NFE =
  num_steps (+ 1 with `denoise`); the last step is not corrected."""
  check(sde, num_steps, order)
  return multistep_loop(
    sde,
    score_fn,
    shape,
    variant="x0",
    order=order,
    num_steps=num_steps,
    eps=eps,
    schedule=schedule,
    rho=rho,
    corrector=True,
    lower_order_final=lower_order_final,
    denoise=denoise,
    x_init=x_init,
    project=project,
  )


def lms_loop(
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 4,
  eps: float = 1e-3,
  schedule: str = "karras",
  rho: float = 7.0,
  lower_order_final: bool = False,
  denoise: bool = False,
  x_init=None,
  project=None,
) -> LoopSampler:
  """Linear multistep (Adams-Bashforth, order 1-4) in sigma on the EDM ODE
  dx_hat / dsigma = (x_hat - x0_hat) / sigma, x_hat = x / a:
      x_hat' = x_hat + sum_j w_j d_{i-j},  w_j = int_{sigma_i}^{sigma_{i+1}} L_j(sigma) dsigma."""
  check(sde, num_steps, order, max_order=4)
  return multistep_loop(
    sde,
    score_fn,
    shape,
    variant="lms",
    order=order,
    num_steps=num_steps,
    eps=eps,
    schedule=schedule,
    rho=rho,
    lower_order_final=lower_order_final,
    denoise=denoise,
    x_init=x_init,
    project=project,
  )


def dpm_solver_sample(
  key,
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 3,
  multistep: bool = True,
  eps: float = 1e-3,
  schedule: str = "log_snr",
  rho: float = 7.0,
  lower_order_final: bool = True,
  denoise: bool = False,
  weights: str = "exact",
  x_init: Optional[jax.Array] = None,
  project=None,
):
  """DPM-Solver samples of `shape`; see `dpm_solver_loop`. Returns (x, nfe)."""
  return run_loop(
    dpm_solver_loop(
      sde,
      score_fn,
      shape,
      num_steps=num_steps,
      order=order,
      multistep=multistep,
      eps=eps,
      schedule=schedule,
      rho=rho,
      lower_order_final=lower_order_final,
      denoise=denoise,
      weights=weights,
      x_init=x_init,
      project=project,
    ),
    key,
  )


def dpm_solver_pp_sample(
  key,
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 2,
  multistep: bool = True,
  eps: float = 1e-3,
  schedule: str = "karras",
  rho: float = 7.0,
  lower_order_final: bool = True,
  denoise: bool = False,
  weights: str = "exact",
  x_init: Optional[jax.Array] = None,
  project=None,
):
  """DPM-Solver++ samples of `shape`; see `dpm_solver_pp_loop`. Returns (x, nfe)."""
  return run_loop(
    dpm_solver_pp_loop(
      sde,
      score_fn,
      shape,
      num_steps=num_steps,
      order=order,
      multistep=multistep,
      eps=eps,
      schedule=schedule,
      rho=rho,
      lower_order_final=lower_order_final,
      denoise=denoise,
      weights=weights,
      x_init=x_init,
      project=project,
    ),
    key,
  )


def dpm_solver_pp_sde_sample(
  key,
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 2,
  eps: float = 1e-3,
  schedule: str = "karras",
  rho: float = 7.0,
  lower_order_final: bool = True,
  denoise: bool = True,
  x_init: Optional[jax.Array] = None,
  project=None,
):
  """SDE-DPM-Solver++ samples of `shape`; see `dpm_solver_pp_sde_loop`. Returns (x, nfe)."""
  return run_loop(
    dpm_solver_pp_sde_loop(
      sde,
      score_fn,
      shape,
      num_steps=num_steps,
      order=order,
      eps=eps,
      schedule=schedule,
      rho=rho,
      lower_order_final=lower_order_final,
      denoise=denoise,
      x_init=x_init,
      project=project,
    ),
    key,
  )


def unipc_sample(
  key,
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 3,
  eps: float = 1e-3,
  schedule: str = "karras",
  rho: float = 7.0,
  lower_order_final: bool = True,
  denoise: bool = False,
  x_init: Optional[jax.Array] = None,
  project=None,
):
  """UniPC samples of `shape`; see `unipc_loop`. Returns (x, nfe)."""
  return run_loop(
    unipc_loop(
      sde,
      score_fn,
      shape,
      num_steps=num_steps,
      order=order,
      eps=eps,
      schedule=schedule,
      rho=rho,
      lower_order_final=lower_order_final,
      denoise=denoise,
      x_init=x_init,
      project=project,
    ),
    key,
  )


def lms_sample(
  key,
  sde,
  score_fn,
  shape,
  *,
  num_steps: int = 20,
  order: int = 4,
  eps: float = 1e-3,
  schedule: str = "karras",
  rho: float = 7.0,
  lower_order_final: bool = False,
  denoise: bool = False,
  x_init: Optional[jax.Array] = None,
  project=None,
):
  """LMS samples of `shape`; see `lms_loop`. Returns (x, nfe)."""
  return run_loop(
    lms_loop(
      sde,
      score_fn,
      shape,
      num_steps=num_steps,
      order=order,
      eps=eps,
      schedule=schedule,
      rho=rho,
      lower_order_final=lower_order_final,
      denoise=denoise,
      x_init=x_init,
      project=project,
    ),
    key,
  )
