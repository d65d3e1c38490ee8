"""Predictor-corrector sampling (paper Algorithm 1; VE/VP instances Algorithms 2 and 3).

Predictor: `predictor(key, sde, score_fn, x, t, t_next, probability_flow) -> (x, x_mean)`, one
step of a reverse-time solver from t to t_next < t (both [B]). Corrector:
`corrector(key, sde, score_fn, x, t, snr, n_steps) -> (x, x_mean)`, score-based MCMC that leaves
p_t invariant. t: [B]; x: [B, ...]. x_mean is the step without its final noise, the sample
returned when `denoise` (the paper's "noise removal") is on.

Where the 2021 release differs from the paper's text, this module follows the release and says so:
- Order: each step runs the corrector at t_i first, then the predictor from t_i to t_{i+1}
  (Algorithms 2/3 print predictor then corrector; both target p_{t_i} at the corrector, the
  difference is only whether the first or the last step is corrected).
- The score enters the reverse drift multiplied by g^2 (eq. 6). A VP network predicts eps and
  the score is -eps / s(t) ("scaled by the std"); that conversion lives in
  `score_sde.models.utils.score_fn_from_model`, not in the samplers.
- Langevin step size (Algorithms 4/5): eps = 2 alpha (snr ||z|| / ||score||)^2, where `snr` is the
  ratio of the gradient step to the injected noise and alpha = 1 - beta_i for VP-type SDEs. The
  norms are averaged over the batch, as in the release (see `langevin_corrector` for why).
- Discrete chains: reverse_diffusion, ancestral_sampling and the Langevin alpha use the SDE's
  chain (DDPM betas, SMLD sigmas) with N = num_steps, as the release does with N = num_scales.
- Time grid: num_steps steps from t_0 = T to t_n = eps on a grid from `schedules` (uniform by
  default), step i from t_i to t_{i+1}. The release evaluates at linspace(T, eps, n) with
  dt = -(T - eps) / n, so its last step ends below eps (below 0 for a two-stage predictor); here
  every step ends on the grid and the last one exactly at eps.
"""

import functools
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp

from score_sde.registry import lookup
from score_sde.sampling import schedules
from score_sde.sampling.base import LoopSampler, project_at, projection_key, run_loop, start
from score_sde.sde import LinearSDE, ScoreFn, bcast

PREDICTORS: Dict[str, Callable] = {}
CORRECTORS: Dict[str, Callable] = {}
# Score evaluations a predictor makes per step, and a corrector per Langevin step.
PREDICTOR_NFE: Dict[str, int] = {}
CORRECTOR_NFE: Dict[str, int] = {}


def register_predictor(name: str, nfe: int):
  def add(fn):
    PREDICTORS[name] = fn
    PREDICTOR_NFE[name] = nfe
    return fn

  return add


def register_corrector(name: str, nfe: int):
  def add(fn):
    CORRECTORS[name] = fn
    CORRECTOR_NFE[name] = nfe
    return fn

  return add


def _noise(key, x):
  return jax.random.normal(key, x.shape, x.dtype)


# Predictors that step along the SDE's discrete chain rather than by the time grid.
CHAIN_PREDICTORS = ("reverse_diffusion", "ancestral_sampling")


@register_predictor("euler_maruyama", 1)
def euler_maruyama_predictor(
  key, sde: LinearSDE, score_fn: ScoreFn, x, t, t_next, probability_flow=False
):
  """Euler-Maruyama on the reverse SDE (eq. 6), or Euler on the probability-flow ODE (eq. 13):

      x_mean = x + [f(t) x - w g(t)^2 score(x, t)] dt,   x = x_mean + g(t) sqrt(-dt) z,

  dt = t_next - t < 0; w = 1 for the SDE, w = 1/2 and no noise for the ODE.
  """
  drift, diffusion = sde.reverse(score_fn, probability_flow).sde(x, t)
  dt = bcast(t_next - t, x)
  x_mean = x + drift * dt
  return x_mean + bcast(diffusion, x) * jnp.sqrt(-dt) * _noise(key, x), x_mean


@register_predictor("reverse_diffusion", 1)
def reverse_diffusion_predictor(
  key, sde: LinearSDE, score_fn: ScoreFn, x, t, t_next, probability_flow=False
):
  """The reverse of the forward SDE's own discretisation (paper eq. 45-47, appendix E):

      x_{i} = x_{i+1} - f_{i+1}(x_{i+1}) + G_{i+1}^2 score(x_{i+1}, t_{i+1}) + G_{i+1} z,

  with (f_i, G_i) from `sde.discretize` (DDPM chain for VP, SMLD chain for VE, Euler-Maruyama
  otherwise). With `probability_flow` the score term is halved and the noise dropped.
  """
  del t_next  # the step is the SDE's own chain step
  rev_f, rev_g = sde.reverse(score_fn, probability_flow).discretize(x, t)
  x_mean = x - rev_f
  return x_mean + bcast(rev_g, x) * _noise(key, x), x_mean


@register_predictor("ancestral_sampling", 1)
def ancestral_sampling_predictor(
  key, sde: LinearSDE, score_fn: ScoreFn, x, t, t_next, probability_flow=False, variance=None
):
  """Ancestral sampling of the discrete chains (paper eq. 44 / appendix F).

  VP (DDPM, Ho et al. eq. 11 with the score in place of -eps/sqrt(1 - alpha_bar)):
      x_mean = (x + beta_i score) / sqrt(1 - beta_i),       x = x_mean + sqrt(beta_i) z
  VE (SMLD):
      x_mean = x + (sigma_i^2 - sigma_{i-1}^2) score,
      x = x_mean + sqrt(sigma_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / sigma_i^2) z
  The step is the SDE's chain's (`sde.chain.ancestral_step`); `check_predictor` rejects SDEs
  without a chain. `variance`: 'beta' (beta_i; SMLD: sigma_i^2 - sigma_{i-1}^2) or 'beta_tilde'
  (the posterior variance, as written above for SMLD); None: the chain's default (as above).
  """
  del t_next
  if probability_flow:
    raise ValueError(
      "ancestral_sampling has no probability-flow form; use reverse_diffusion or euler_maruyama"
    )
  x_mean, std = sde.chain.ancestral_step(x, score_fn(x, t), t, variance)
  return x_mean + bcast(std, x) * _noise(key, x), x_mean


@register_predictor("none", 0)
def none_predictor(key, sde, score_fn, x, t, t_next, probability_flow=False):
  """Identity: corrector-only sampling (e.g. annealed Langevin dynamics of NCSN)."""
  return x, x


def _per_sample_norm(v):
  return jnp.sqrt(jnp.sum(v.reshape(v.shape[0], -1) ** 2, axis=-1))


@register_corrector("langevin", 1)
def langevin_corrector(key, sde: LinearSDE, score_fn: ScoreFn, x, t, snr, n_steps):
  """Langevin MCMC with a step size set by a target signal-to-noise ratio (Algorithms 4/5):

      eps_j = 2 alpha_i (snr ||z|| / ||score(x, t)||)^2,
      x_mean = x + eps_j score(x, t),   x = x_mean + sqrt(2 eps_j) z,   repeated n_steps times.

  `snr` is r in the paper: the ratio ||eps score|| / ||sqrt(2 eps) z|| of the drift to the noise
  of one step. alpha_i = 1 - beta_i for VP/sub-VP, 1 for VE.

  The norms are averaged over the whole batch before the ratio is taken (the 2021 release does
  the same, per device then pmean; here the mean is over the global, possibly sharded, batch, so
  the result does not depend on the number of devices). Algorithm 4 writes the norms of one
  sample; per-sample ratios agree with this in high dimension, where ||z|| and ||score|| concentrate,
  but in low dimension a sample near a mode has ||score|| -> 0 and its step size diverges
  (2-D mixtures come out with the wrong means and covariances).
  """
  alpha = sde.langevin_alpha(t)

  def step(j, carry):
    x, _ = carry
    grad = score_fn(x, t)
    z = _noise(jax.random.fold_in(key, j), x)
    ratio = snr * jnp.mean(_per_sample_norm(z)) / jnp.mean(_per_sample_norm(grad))
    step_size = 2.0 * alpha * ratio**2
    x_mean = x + bcast(step_size, x) * grad
    return x_mean + bcast(jnp.sqrt(2.0 * step_size), x) * z, x_mean

  return jax.lax.fori_loop(0, n_steps, step, (x, x))


@register_corrector("ald", 1)
def annealed_langevin_corrector(key, sde: LinearSDE, score_fn: ScoreFn, x, t, snr, n_steps):
  """Annealed Langevin dynamics of NCSN (Song & Ermon 2019, Algorithm 1) at noise level s(t):

      eps_j = 2 alpha_i (snr s(t))^2,  x_mean = x + eps_j score,  x = x_mean + sqrt(2 eps_j) z.

  NCSN writes x <- x + a_i / 2 score + sqrt(a_i) z with a_i = epsilon sigma_i^2 / sigma_L^2; this is
  that update with a_i = 2 eps_j, i.e. epsilon / sigma_L^2 = 4 alpha_i snr^2: the step is
  proportional to the noise variance s(t)^2 and `snr` replaces the hand-tuned epsilon (as in the
  2021 release's AnnealedLangevinDynamics). Since ||score|| ~ sqrt(d) / s(t) and ||z|| ~ sqrt(d),
  it is the Langevin corrector's step with the norms replaced by their typical ratio.
  Made for VE (NCSN). Used alone (predictor 'none') with sub-VP, whose s(t) vanishes like t, the
  late steps are too small for the samples to follow the moving marginal mean a(t) mu.
  """
  alpha = sde.langevin_alpha(t)
  std = sde.alpha_sigma(t)[1]
  step_size = 2.0 * alpha * (snr * std) ** 2

  def step(j, carry):
    x, _ = carry
    grad = score_fn(x, t)
    z = _noise(jax.random.fold_in(key, j), x)
    x_mean = x + bcast(step_size, x) * grad
    return x_mean + bcast(jnp.sqrt(2.0 * step_size), x) * z, x_mean

  return jax.lax.fori_loop(0, n_steps, step, (x, x))


@register_corrector("none", 0)
def none_corrector(key, sde, score_fn, x, t, snr, n_steps):
  """Identity: predictor-only sampling."""
  return x, x


def check_predictor(sde: LinearSDE, predictor: str, corrector: str, probability_flow: bool = False):
  """Fails before any compute on unknown names and on combinations with no meaning."""
  lookup(PREDICTORS, predictor, "predictor")
  lookup(CORRECTORS, corrector, "corrector")
  if predictor == "ancestral_sampling":
    if sde.chain is None:
      raise ValueError(
        f"ancestral_sampling needs a discrete chain (DDPM for vpsde, SMLD for vesde); "
        f"{type(sde).__name__} has none: use reverse_diffusion or euler_maruyama"
      )
    if probability_flow:
      raise ValueError(
        "ancestral_sampling has no probability-flow form; use reverse_diffusion or euler_maruyama"
      )
  if predictor == "none" and corrector == "none":
    raise ValueError("predictor and corrector are both 'none': nothing would be sampled")


def pc_sampler(
  sde: LinearSDE,
  score_fn: ScoreFn,
  shape,
  *,
  predictor: str = "euler_maruyama",
  corrector: str = "none",
  snr: float = 0.16,
  n_steps: int = 1,
  num_steps: Optional[int] = None,
  eps: float = 1e-3,
  denoise: bool = True,
  probability_flow: bool = False,
  schedule: str = "uniform",
  rho: float = 7.0,
  ancestral_variance: Optional[str] = None,
  x_init=None,
  project=None,
) -> LoopSampler:
  """Predictor-corrector sampler over `num_steps` (default N) time steps T = t_0 > ... > t_n = eps
  of `schedule` (see `schedules`; `rho` for karras). At step i the corrector runs at t_i and the
  predictor steps from t_i to t_{i+1}. When num_steps differs from the SDE's N, the SDE's
  discrete chain (used by reverse_diffusion, ancestral_sampling and the Langevin alpha) is
  rebuilt with N = num_steps so that each step is one link of the chain. `x_init`: x_T (see
  `base` for the key rule). `n_steps`: Langevin steps per time step. `project(x, t, key)`
  (see `base`): applied to x_T, after the corrector (at t_i) and after the predictor (at t_{i+1}).
  `ancestral_variance`: 'beta' or 'beta_tilde' for the ancestral_sampling predictor (see there).
  """
  if ancestral_variance not in (None, "beta", "beta_tilde"):
    raise ValueError(
      f"ancestral_variance must be 'beta' or 'beta_tilde', got {ancestral_variance!r}"
    )
  check_predictor(sde, predictor, corrector, probability_flow)
  if num_steps is None:
    num_steps = sde.N
  if num_steps < 1 or n_steps < 0:
    raise ValueError(f"num_steps must be >= 1 and n_steps_each >= 0, got {num_steps}, {n_steps}")
  if num_steps != sde.N:
    sde = sde.with_steps(num_steps)
  user = f"{predictor}/{corrector} on the {type(sde).__name__}"
  if predictor in CHAIN_PREDICTORS and sde.chain is not None:
    sde.chain.check(user)
  if corrector in ("langevin", "ald") and sde.langevin_chain is not None:
    sde.langevin_chain.check(user)
  predictor_fn, corrector_fn = PREDICTORS[predictor], CORRECTORS[corrector]
  if predictor == "ancestral_sampling":
    predictor_fn = functools.partial(predictor_fn, variance=ancestral_variance)
  ts = schedules.time_grid(sde, num_steps, eps, schedule, rho=rho)

  def init(key):
    key, x = start(key, sde, shape, x_init)
    x = project_at(project, x, ts[0], None if project is None else projection_key(key, 0))
    return key, x, x

  def projected(x, x_mean, t, key):
    if project is None:
      return x, x_mean
    return project_at(project, x, t, key), project_at(project, x_mean, t, None)

  def run(carry, idx):
    def step(carry, i):
      key, x, _ = carry
      t = jnp.full(shape[:1], ts[i], dtype=x.dtype)
      t_next = jnp.full(shape[:1], ts[i + 1], dtype=x.dtype)
      kc, kp = jax.random.split(jax.random.fold_in(key, i))
      x, x_mean_c = corrector_fn(kc, sde, score_fn, x, t, snr, n_steps)
      if corrector != "none":
        x, x_mean_c = projected(x, x_mean_c, t, projection_key(key, i, 1))
      x, x_mean = predictor_fn(kp, sde, score_fn, x, t, t_next, probability_flow)
      if predictor != "none":
        x, x_mean = projected(x, x_mean, t_next, projection_key(key, i + 1))
      if predictor == "none":  # corrector-only: noise removal drops the corrector's last noise
        x_mean = x_mean_c
      return (key, x, x_mean), None

    return jax.lax.scan(step, carry, idx)[0]

  def output(carry):
    _, x, x_mean = carry
    return (x_mean if denoise else x), nfe

  nfe = num_steps * (PREDICTOR_NFE[predictor] + CORRECTOR_NFE[corrector] * n_steps)
  return LoopSampler(init, run, output, num_steps, nfe)


def pc_sample(key, sde: LinearSDE, score_fn: ScoreFn, shape, **kwargs):
  """Samples of shape `shape = (B, ...)` by predictor-corrector sampling (see `pc_sampler` for the
  options). Returns (x: shape, nfe: int)."""
  return run_loop(pc_sampler(sde, score_fn, shape, **kwargs), key)
