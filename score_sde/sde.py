"""Linear forward SDEs dx = f(t) x dt + g(t) dW and their Gaussian marginals.

Every SDE here is linear in x, so the perturbation kernel is Gaussian:

    p_t(x | x0) = N(x; a(t) x0, s(t)^2 I),   f = a'/a,   g^2 = 2 s s' - 2 (a'/a) s^2

(notes 003, "The Noising SDE"). Each SDE describes itself: its coefficients, its noise-to-signal
ratio and log-SNR with their inverses, the label its network is conditioned on, the network's
default target and, where the paper has one, its discrete chain (DDPM or SMLD). Code outside
this module asks the SDE instead of testing its class.

Glossary (one name per quantity; used across the package):
  t          time in [0, T]; samplers run from t = T down to the cut-off t_eps.
  a(t)       signal scale of the kernel (`alpha_sigma(t)[0]`).
  s(t)       noise std of the kernel (`alpha_sigma(t)[1]`).
  sigma(t)   s(t) / a(t), the noise-to-signal ratio (EDM's sigma); `sigma`, inverse `t_of_sigma`.
  lambda(t)  log(a(t) / s(t)) = -log sigma(t), the log-SNR; `log_snr`, inverse `t_of_log_snr`.
  f(t), g^2  drift coefficient a'/a and squared diffusion of the SDE; `f`, `g2`.
  eps        the standard normal noise of x_t = a x0 + s eps (never a time).
  t_eps      the time cut-off (config fields `training.eps`, `sampling.eps`; argument `eps` of
             samplers and losses).
  N          length of the discrete chain (config `sde.num_scales`).
  num_steps  number of time steps of a sampler (score evaluations: `nfe`, reported separately).
  label      the scalar a network is conditioned on, `noise_label(t)`.

Shapes: `x: [B, ...]`, `t: [B]` (or a scalar). Per-sample coefficients broadcast over the
trailing axes of x.
"""

import dataclasses
import inspect
import math
from typing import Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from score_sde.registry import lookup

Array = jax.Array
ScoreFn = Callable[[Array, Array], Array]


def bcast(v: Array, x: Array) -> Array:
  """Reshapes a per-sample array `v: [B]` (or scalar) to broadcast against `x: [B, ...]`."""
  v = jnp.asarray(v)
  return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def _float(t) -> Array:
  return jnp.asarray(t, dtype=jnp.result_type(float))


def _chain_index(t: Array, N: int, T: float) -> Array:
  # floor as in the 2021 release, but with a 1e-4 margin: in float32, t = i / (N - 1) times
  # (N - 1) can land just below i and would otherwise select step i - 1.
  return jnp.floor(jnp.asarray(t) * (N - 1) / T + 1e-4).astype(jnp.int32)


# --- discrete chains -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DDPMChain:
  """DDPM's chain x_{i+1} = sqrt(1 - beta_i) x_i + sqrt(beta_i) z, i = 0..N-1 (paper eq. 47).

  beta_i = beta_min / N + i / (N - 1) (beta_max - beta_min) / N; time t maps to step
  i = floor(t (N - 1) / T).
  """

  beta_min: float
  beta_max: float
  N: int
  T: float
  kind: str = "ddpm"

  @property
  def betas(self) -> Array:
    return jnp.linspace(self.beta_min / self.N, self.beta_max / self.N, self.N)

  @property
  def alphas_cumprod(self) -> Array:
    """alpha_bar_i = prod_{j <= i} (1 - beta_j)."""
    return jnp.cumprod(1.0 - self.betas)

  def index(self, t: Array) -> Array:
    return _chain_index(t, self.N, self.T)

  def std(self, t: Array) -> Array:
    """sqrt(1 - alpha_bar_i): the std of x_i given x_0, used for `continuous=False` models."""
    return jnp.sqrt(1.0 - self.alphas_cumprod[self.index(t)])

  def forward_step(self, x: Array, t: Array) -> Tuple[Array, Array]:
    """(f_i = sqrt(1 - beta_i) x - x: shape of x, G_i = sqrt(beta_i): shape of t)."""
    beta = self.betas[self.index(t)]
    return bcast(jnp.sqrt(1.0 - beta), x) * x - x, jnp.sqrt(beta)

  def ancestral_step(
    self, x: Array, score: Array, t: Array, variance: Optional[str] = None
  ) -> Tuple[Array, Array]:
    """Ho et al. eq. 11 with the score for -eps / sqrt(1 - alpha_bar):
    x_mean = (x + beta_i score) / sqrt(1 - beta_i), std sqrt(beta_i) ('beta', the default), or
    the posterior std sqrt(beta-tilde_i), beta-tilde_i = (1 - alpha_bar_{i-1}) / (1 - alpha_bar_i)
    beta_i ('beta_tilde'; 0 at i = 0), the two choices of Ho et al. section 3.2.
    Returns (x_mean, std [B])."""
    i = self.index(t)
    beta = self.betas[i]
    x_mean = (x + bcast(beta, x) * score) / bcast(jnp.sqrt(1.0 - beta), x)
    if variance in (None, "beta"):
      return x_mean, jnp.sqrt(beta)
    abar = self.alphas_cumprod
    abar_prev = jnp.where(i == 0, 1.0, abar[jnp.maximum(i - 1, 0)])
    return x_mean, jnp.sqrt(beta * (1.0 - abar_prev) / (1.0 - abar[i]))

  def langevin_alpha(self, t: Array) -> Array:
    """alpha_i = 1 - beta_i (paper Algorithm 5)."""
    return 1.0 - self.betas[self.index(t)]

  def check(self, user: str) -> None:
    """Refuses a chain whose beta_i reach 1 (sqrt(1 - beta_i) and 1 - beta_i fail)."""
    if self.beta_max / self.N >= 1.0:
      raise ValueError(
        f"{user} uses DDPM's discrete betas, up to beta_max / num_steps = "
        f"{self.beta_max / self.N:.3g} >= 1: use num_steps > {self.beta_max:g}, "
        f"or the euler_maruyama predictor without a corrector"
      )


@dataclasses.dataclass(frozen=True)
class SMLDChain:
  """SMLD's chain x_{i+1} = x_i + sqrt(sigma_{i+1}^2 - sigma_i^2) z (paper eq. 46), sigma_i
  geometric from sigma_min to sigma_max, i = 0..N-1; time t maps to i = floor(t (N - 1) / T)."""

  sigma_min: float
  sigma_max: float
  N: int
  T: float
  kind: str = "smld"

  @property
  def sigmas(self) -> Array:
    return jnp.exp(jnp.linspace(math.log(self.sigma_min), math.log(self.sigma_max), self.N))

  def index(self, t: Array) -> Array:
    return _chain_index(t, self.N, self.T)

  def std(self, t: Array) -> Array:
    return self.sigmas[self.index(t)]

  def _sigma_prev(self, i):
    return self.sigmas[i], jnp.where(i == 0, 0.0, self.sigmas[jnp.maximum(i - 1, 0)])

  def forward_step(self, x: Array, t: Array) -> Tuple[Array, Array]:
    sigma, prev = self._sigma_prev(self.index(t))
    return jnp.zeros_like(x), jnp.sqrt(sigma**2 - prev**2)

  def ancestral_step(
    self, x: Array, score: Array, t: Array, variance: Optional[str] = None
  ) -> Tuple[Array, Array]:
    """x_mean = x + (sigma_i^2 - sigma_{i-1}^2) score, std the posterior one
    sqrt(sigma_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / sigma_i^2) (default, 'beta_tilde'), or the
    forward step's sqrt(sigma_i^2 - sigma_{i-1}^2) ('beta')."""
    sigma, prev = self._sigma_prev(self.index(t))
    x_mean = x + bcast(sigma**2 - prev**2, x) * score
    if variance == "beta":
      return x_mean, jnp.sqrt(sigma**2 - prev**2)
    return x_mean, jnp.sqrt(prev**2 * (sigma**2 - prev**2) / sigma**2)

  def langevin_alpha(self, t: Array) -> Array:
    return jnp.ones_like(_float(t))

  def check(self, user: str) -> None:
    del user


# --- the interface ---------------------------------------------------------------------------
class LinearSDE:
  """Interface shared by all forward SDEs of the package.

  Subclasses are frozen dataclasses with a field `N` (chain length) and an end time `T`, and
  implement `alpha_sigma(t)`, `f(t)`, `g2(t)` and `prior_std`; the rest has generic defaults
  that a subclass overrides with a closed form where it has one.
  """

  N: int
  T: float

  # --- coefficients -------------------------------------------------------------------
  def alpha_sigma(self, t: Array) -> Tuple[Array, Array]:
    """(a(t), s(t)) of the perturbation kernel N(a x0, s^2 I)."""
    raise NotImplementedError

  def f(self, t: Array) -> Array:
    """Scalar drift coefficient f(t) = a'/a of dx = f(t) x dt + g(t) dW."""
    raise NotImplementedError

  def g2(self, t: Array) -> Array:
    """Squared diffusion coefficient g(t)^2 = 2 s s' - 2 f s^2."""
    raise NotImplementedError

  @property
  def prior_std(self) -> float:
    """Std of the prior N(0, prior_std^2 I) at t = T (a Python float)."""
    raise NotImplementedError

  def sigma(self, t: Array) -> Array:
    """sigma(t) = s(t) / a(t), the noise-to-signal ratio (increasing in t)."""
    a, s = self.alpha_sigma(t)
    return s / a

  def t_of_sigma(self, sigma: Array, iters: int = 64) -> Array:
    """Inverse of sigma(t); generic: bisection on [0, T] (`iters` halvings)."""
    sigma = _float(sigma)
    lo, hi = jnp.zeros_like(sigma), jnp.full_like(sigma, self.T)

    def body(_, bounds):
      lo, hi = bounds
      mid = 0.5 * (lo + hi)
      below = self.sigma(mid) < sigma
      return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (lo, hi))
    return 0.5 * (lo + hi)

  def log_snr(self, t: Array) -> Array:
    """lambda(t) = log(a(t) / s(t)) (decreasing in t)."""
    a, s = self.alpha_sigma(t)
    return jnp.log(a) - jnp.log(s)

  def t_of_log_snr(self, lam: Array) -> Array:
    """Inverse of lambda(t): t_of_sigma(exp(-lambda))."""
    return self.t_of_sigma(jnp.exp(-_float(lam)))

  # --- the network's view -------------------------------------------------------------
  def noise_label(self, t: Array, discrete: bool = False) -> Array:
    """The network's conditioning scalar at time t, [B]. Default: 999 t / T (the release's VP
    label); `discrete` (a model trained on the discrete chain) changes it where the release does."""
    del discrete
    return 999.0 * _float(t) / self.T

  @property
  def default_target(self) -> str:
    """What the network predicts by default: 'eps' (see `targets.TARGETS`)."""
    return "eps"

  def score_std(self, t: Array, discrete: bool = False) -> Array:
    """The std s in score = -eps / s used to read an eps network. s(t), or for a model trained
    on the discrete chain (`discrete`) the chain's own std where it differs (DDPM)."""
    del discrete
    return self.alpha_sigma(t)[1]

  # --- discrete chains ----------------------------------------------------------------
  @property
  def chain(self) -> Optional[object]:
    """The paper's discrete chain of this SDE (DDPMChain, SMLDChain), or None."""
    return None

  @property
  def langevin_chain(self) -> Optional[object]:
    """The chain whose alpha_i = 1 - beta_i scales the Langevin step (Algorithm 5), or None."""
    return self.chain

  def langevin_alpha(self, t: Array) -> Array:
    """alpha_i of the Langevin corrector's step size: the chain's, 1 without one (Algorithm 4)."""
    chain = self.langevin_chain
    return jnp.ones_like(_float(t)) if chain is None else chain.langevin_alpha(t)

  def with_steps(self, N: int) -> "LinearSDE":
    """The same SDE with a chain of N steps."""
    return dataclasses.replace(self, N=N)

  # --- the SDE ------------------------------------------------------------------------
  def drift(self, x: Array, t: Array) -> Array:
    """f(t) x, shape of x."""
    return bcast(self.f(t), x) * x

  def diffusion(self, t: Array) -> Array:
    """g(t), shape of t."""
    return jnp.sqrt(self.g2(t))

  def sde(self, x: Array, t: Array) -> Tuple[Array, Array]:
    """(drift f(t) x: shape of x, diffusion g(t): shape of t)."""
    return self.drift(x, t), self.diffusion(t)

  def marginal_prob(self, x0: Array, t: Array) -> Tuple[Array, Array]:
    """Mean a(t) x0 (shape of x0) and std s(t) (shape of t) of p_t(x | x0)."""
    a, s = self.alpha_sigma(t)
    return bcast(a, x0) * x0, s

  def prior_sample(self, key: Array, shape) -> Array:
    """x_T ~ N(0, prior_std^2 I), `shape = (B, ...)`."""
    return self.prior_std * jax.random.normal(key, shape)

  def prior_logp(self, z: Array) -> Array:
    """log N(z; 0, prior_std^2 I) per sample, `z: [B, ...]` -> `[B]`."""
    d = np.prod(z.shape[1:])
    var = self.prior_std**2
    sq = jnp.sum(z.reshape(z.shape[0], -1) ** 2, axis=-1)
    return -0.5 * d * math.log(2 * math.pi * var) - 0.5 * sq / var

  def discretize(self, x: Array, t: Array) -> Tuple[Array, Array]:
    """One step x_{i+1} = x_i + f_i + G_i z of the discretised SDE: the chain's step where the
    SDE has one, else Euler-Maruyama with dt = T / N (f_i = f(t) x dt, G_i = g(t) sqrt(dt)).
    Returns (f_i: shape of x, G_i: shape of t)."""
    if self.chain is not None:
      return self.chain.forward_step(x, t)
    dt = self.T / self.N
    drift, diffusion = self.sde(x, t)
    return drift * dt, diffusion * math.sqrt(dt)

  def reverse(self, score_fn: ScoreFn, probability_flow: bool = False) -> "ReverseSDE":
    """The reverse-time SDE (or probability-flow ODE) driven by `score_fn(x, t)`."""
    return ReverseSDE(self, score_fn, probability_flow)


@dataclasses.dataclass(frozen=True)
class ReverseSDE:
  """Reverse-time process of a forward SDE, in forward-time coordinates (dt < 0 when sampling).

  SDE (paper eq. 6):  dx = [f(x, t) - g(t)^2 score(x, t)] dt + g(t) dW_bar
  ODE (paper eq. 13): dx = [f(x, t) - 1/2 g(t)^2 score(x, t)] dt       (probability_flow)
  """

  forward: LinearSDE
  score_fn: ScoreFn
  probability_flow: bool = False

  @property
  def T(self) -> float:
    return self.forward.T

  @property
  def N(self) -> int:
    return self.forward.N

  def _weight(self) -> float:
    return 0.5 if self.probability_flow else 1.0

  def sde(self, x: Array, t: Array) -> Tuple[Array, Array]:
    """(reverse drift: shape of x, diffusion: shape of t; zero for the ODE)."""
    drift, diffusion = self.forward.sde(x, t)
    score = self.score_fn(x, t)
    drift = drift - bcast(diffusion**2, x) * score * self._weight()
    diffusion = jnp.zeros_like(diffusion) if self.probability_flow else diffusion
    return drift, diffusion

  def discretize(self, x: Array, t: Array) -> Tuple[Array, Array]:
    """Reverse of the forward chain: x_i = x_{i+1} - f_{i+1} + G_{i+1}^2 score + G_{i+1} z.

    Returns (rev_f, rev_G) with rev_f = f_i - G_i^2 score (times 1/2 for the ODE), so that
    `x_prev = x - rev_f + rev_G z` (paper eq. 46-47, the reverse-diffusion predictor).
    """
    f, G = self.forward.discretize(x, t)
    rev_f = f - bcast(G**2, x) * self.score_fn(x, t) * self._weight()
    rev_G = jnp.zeros_like(G) if self.probability_flow else G
    return rev_f, rev_G


# --- VP and sub-VP ---------------------------------------------------------------------------
class _LinearBeta(LinearSDE):
  """beta(t) = beta_min + t (beta_max - beta_min), shared by VP and sub-VP (fields beta_min,
  beta_max, N, T). log a(t) = -1/2 int_0^t beta."""

  beta_min: float
  beta_max: float

  def beta(self, t):
    return self.beta_min + t * (self.beta_max - self.beta_min)

  def log_mean_coeff(self, t):
    """log a(t) = -1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min."""
    return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

  def _t_of_log_inv_a2(self, L):
    """Solves -2 log a(t) = 1/2 (beta_max - beta_min) t^2 + beta_min t = L for t >= 0, in the
    cancellation-free form t = 2 L / (beta_min + sqrt(beta_min^2 + 2 (beta_max - beta_min) L))."""
    d = self.beta_max - self.beta_min
    return 2.0 * L / (self.beta_min + jnp.sqrt(self.beta_min**2 + 2.0 * d * L))

  def f(self, t):
    return -0.5 * self.beta(_float(t))

  @property
  def prior_std(self):
    return 1.0

  @property
  def langevin_chain(self):
    return DDPMChain(self.beta_min, self.beta_max, self.N, self.T)


@dataclasses.dataclass(frozen=True)
class VPSDE(_LinearBeta):
  """Variance preserving SDE (DDPM's continuum, paper eq. 11).

  dx = -1/2 beta(t) x dt + sqrt(beta(t)) dW,  beta(t) = beta_min + t (beta_max - beta_min)
  a(t) = exp(-1/2 int_0^t beta),  s(t)^2 = 1 - a(t)^2.  Chain: DDPM.
  """

  beta_min: float = 0.1
  beta_max: float = 20.0
  N: int = 1000
  T: float = 1.0

  def alpha_sigma(self, t):
    lmc = self.log_mean_coeff(_float(t))
    # expm1 keeps s(t) accurate for small t, where 1 - exp(2 lmc) cancels.
    return jnp.exp(lmc), jnp.sqrt(-jnp.expm1(2.0 * lmc))

  def g2(self, t):
    return self.beta(_float(t))

  def t_of_sigma(self, sigma, iters: int = 64):
    """sigma^2 = 1 / a^2 - 1, so -2 log a = log(1 + sigma^2)."""
    return self._t_of_log_inv_a2(jnp.log1p(_float(sigma) ** 2))

  def log_snr(self, t):
    lmc = self.log_mean_coeff(_float(t))
    return lmc - 0.5 * jnp.log(-jnp.expm1(2.0 * lmc))

  def noise_label(self, t, discrete=False):
    """999 t (continuous, the release's label), or t (N - 1) / T, the chain index (discrete)."""
    t = _float(t)
    return t * (self.N - 1) / self.T if discrete else 999.0 * t / self.T

  def score_std(self, t, discrete=False):
    """s(t), or the DDPM chain's sqrt(1 - alpha_bar_i) for discrete models (as the release)."""
    return self.chain.std(t) if discrete else self.alpha_sigma(t)[1]

  @property
  def chain(self):
    return DDPMChain(self.beta_min, self.beta_max, self.N, self.T)

  @property
  def discrete_betas(self) -> Array:
    """Shorthand for chain.betas."""
    return self.chain.betas

  @property
  def alphas_cumprod(self) -> Array:
    """Shorthand for chain.alphas_cumprod."""
    return self.chain.alphas_cumprod


@dataclasses.dataclass(frozen=True)
class SubVPSDE(_LinearBeta):
  """Sub-VP SDE (paper eq. 17), whose variance is bounded by the VP one at every t.

  dx = -1/2 beta(t) x dt + sqrt(beta(t) (1 - exp(-2 int_0^t beta))) dW
  a(t) = exp(-1/2 int_0^t beta),  s(t) = 1 - exp(-int_0^t beta).
  No discrete chain of its own (the paper discretises it by Euler-Maruyama); the Langevin
  corrector's alpha_i = 1 - beta_i uses DDPM's betas, as the release does.
  """

  beta_min: float = 0.1
  beta_max: float = 20.0
  N: int = 1000
  T: float = 1.0

  def alpha_sigma(self, t):
    lmc = self.log_mean_coeff(_float(t))
    return jnp.exp(lmc), -jnp.expm1(2.0 * lmc)

  def g2(self, t):
    t = _float(t)
    return self.beta(t) * -jnp.expm1(4.0 * self.log_mean_coeff(t))

  def t_of_sigma(self, sigma, iters: int = 64):
    """sigma = 1 / a - a, so a = (sqrt(sigma^2 + 4) - sigma) / 2."""
    sigma = _float(sigma)
    a = 0.5 * (jnp.sqrt(sigma**2 + 4.0) - sigma)
    return self._t_of_log_inv_a2(-2.0 * jnp.log(a))


# --- VE ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class VESDE(LinearSDE):
  """Variance exploding SDE (SMLD's continuum, paper eq. 9).

  dx = sqrt(d sigma(t)^2 / dt) dW,  sigma(t) = sigma_min (sigma_max / sigma_min)^t,
  a(t) = 1, s(t) = sigma(t).  Chain: SMLD.

  As in the paper, s(0) = sigma_min > 0: x0 is taken to carry sigma_min noise already, so the
  moment equation v' = g^2 holds with v(0) = sigma_min^2.
  """

  sigma_min: float = 0.01
  sigma_max: float = 50.0
  N: int = 1000
  T: float = 1.0

  def sigma(self, t):
    return self.sigma_min * (self.sigma_max / self.sigma_min) ** (_float(t) / self.T)

  def alpha_sigma(self, t):
    s = self.sigma(t)
    return jnp.ones_like(s), s

  def f(self, t):
    return jnp.zeros_like(_float(t))

  def g2(self, t):
    return self.sigma(t) ** 2 * (2.0 * math.log(self.sigma_max / self.sigma_min) / self.T)

  def t_of_sigma(self, sigma, iters: int = 64):
    """t = T log(sigma / sigma_min) / log(sigma_max / sigma_min)."""
    return (
      self.T * jnp.log(_float(sigma) / self.sigma_min) / math.log(self.sigma_max / self.sigma_min)
    )

  @property
  def prior_std(self):
    return self.sigma_max

  def noise_label(self, t, discrete=False):
    """sigma(t) (continuous); for discrete (SMLD-trained) models the release's level index
    k = round((T - t) (N - 1) / T), int32, 0 at sigma_max and N - 1 at sigma_min, which the
    network turns into sigma_k = sigma_i of the chain with i = N - 1 - k
    (`models.noise_levels`; deviation 1 of issue 11)."""
    if discrete:
      return jnp.round((self.T - _float(t)) * (self.N - 1) / self.T).astype(jnp.int32)
    return self.sigma(t)

  @property
  def default_target(self):
    return "score"

  @property
  def chain(self):
    return SMLDChain(self.sigma_min, self.sigma_max, self.N, self.T)

  @property
  def discrete_sigmas(self) -> Array:
    """Shorthand for chain.sigmas."""
    return self.chain.sigmas


# --- other Gaussian paths --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class GaussianPath(LinearSDE):
  """Any Gaussian path x_t = a(t) x0 + s(t) eps, with f and g^2 derived by autodiff.

  f(t) = a'(t) / a(t),  g(t)^2 = 2 s s' - 2 f s^2  (notes 003, eq. 2).
  `alpha_fn` and `sigma_fn` map a float array t to an array of the same shape; they must be
  differentiable and a(t) > 0 on [0, T]. The prior is N(0, s(T)^2 I), exact when a(T) -> 0.
  """

  alpha_fn: Callable[[Array], Array]
  sigma_fn: Callable[[Array], Array]
  N: int = 1000
  T: float = 1.0
  name: str = "gaussian_path"

  def alpha_sigma(self, t):
    t = _float(t)
    return self.alpha_fn(t), self.sigma_fn(t)

  def _derivs(self, t):
    t = _float(t)
    one = jnp.ones_like(t)
    a, da = jax.jvp(self.alpha_fn, (t,), (one,))
    s, ds = jax.jvp(self.sigma_fn, (t,), (one,))
    return a, da, s, ds

  def f(self, t):
    a, da, _, _ = self._derivs(t)
    return da / a

  def g2(self, t):
    a, da, s, ds = self._derivs(t)
    return 2.0 * s * ds - 2.0 * (da / a) * s**2

  @property
  def prior_std(self):
    # A constant even when asked inside jit (float() of a traced value would fail there).
    with jax.ensure_compile_time_eval():
      return float(self.sigma_fn(jnp.asarray(self.T, jnp.float32)))


@dataclasses.dataclass(frozen=True)
class CosinePath(LinearSDE):
  """Cosine schedule (Nichol & Dhariwal 2021) as a variance-preserving Gaussian path.

  u(t) = pi/2 (t + offset) / (1 + offset), u0 = u(0):
  a(t) = cos u / cos u0,
  s(t) = sqrt(1 - a^2) = sqrt(sin(u - u0) sin(u + u0)) / cos u0   (cancellation-free: u - u0 =
         pi/2 t / (1 + offset) is computed directly, so s stays accurate in float32 near t = 0),
  f = -pi/2 tan(u) / (1 + offset),  g^2 = -2 f (as a^2 + s^2 = 1),
  sigma = s / a: cos u = cos u0 / sqrt(1 + sigma^2), i.e. tan u = sqrt(sin^2 u0 + sigma^2) / cos u0.
  T < 1 because a(1) = 0 makes f infinite; at T = 0.999, a(T) ~ 1.6e-3.
  """

  offset: float = 0.008
  N: int = 1000
  T: float = 0.999

  def _u(self, t):
    k = 0.5 * math.pi / (1.0 + self.offset)
    return k * (t + self.offset), k * t, k

  def alpha_sigma(self, t):
    t = _float(t)
    u, du, _ = self._u(t)
    u0 = 0.5 * math.pi * self.offset / (1.0 + self.offset)
    c0 = math.cos(u0)
    return jnp.cos(u) / c0, jnp.sqrt(jnp.sin(du) * jnp.sin(u + u0)) / c0

  def f(self, t):
    u, _, k = self._u(_float(t))
    return -k * jnp.tan(u)

  def g2(self, t):
    return -2.0 * self.f(t)

  def t_of_sigma(self, sigma, iters: int = 64):
    sigma = _float(sigma)
    u0 = 0.5 * math.pi * self.offset / (1.0 + self.offset)
    u = jnp.arctan(jnp.sqrt(math.sin(u0) ** 2 + sigma**2) / math.cos(u0))
    return (u - u0) * (1.0 + self.offset) / (0.5 * math.pi)

  @property
  def prior_std(self):
    return float(
      np.sqrt(
        1.0
        - (
          np.cos(0.5 * np.pi * (self.T + self.offset) / (1 + self.offset))
          / np.cos(0.5 * np.pi * self.offset / (1 + self.offset))
        )
        ** 2
      )
    )


def cosine_path(offset: float = 0.008, N: int = 1000, T: float = 0.999) -> CosinePath:
  """The cosine path (kept for callers of the former factory)."""
  return CosinePath(offset=offset, N=N, T=T)


@dataclasses.dataclass(frozen=True)
class LinearPath(LinearSDE):
  """The linear (rectified-flow) path a(t) = 1 - t, s(t) = t.

  f = -1 / (1 - t),  g^2 = 2 s s' - 2 f s^2 = 2 t / (1 - t),
  sigma = t / (1 - t) -> t = sigma / (1 + sigma),  lambda = log((1 - t) / t) -> t = 1 / (1 + e^lambda).
  T < 1 because a(1) = 0 makes f infinite; the prior N(0, T^2 I) ignores a(T) x0 = (1 - T) x0.
  """

  N: int = 1000
  T: float = 0.999

  def alpha_sigma(self, t):
    t = _float(t)
    return 1.0 - t, t

  def f(self, t):
    return -1.0 / (1.0 - _float(t))

  def g2(self, t):
    t = _float(t)
    return 2.0 * t / (1.0 - t)

  def t_of_sigma(self, sigma, iters: int = 64):
    sigma = _float(sigma)
    return sigma / (1.0 + sigma)

  def log_snr(self, t):
    t = _float(t)
    return jnp.log1p(-t) - jnp.log(t)

  def t_of_log_snr(self, lam):
    return jax.nn.sigmoid(-_float(lam))

  @property
  def prior_std(self):
    return float(self.T)


@dataclasses.dataclass(frozen=True)
class EDMPath(LinearSDE):
  """The EDM path (Karras et al. 2022) a(t) = 1, s(t) = t, on [0, sigma_max]: time is sigma.

  f = 0,  g^2 = 2 t,  sigma(t) = t,  lambda = -log t -> t = exp(-lambda).
  Labelled and trained like VE (label sigma, default target the score).
  """

  sigma_max: float = 80.0
  N: int = 1000

  @property
  def T(self) -> float:
    return self.sigma_max

  def alpha_sigma(self, t):
    t = _float(t)
    return jnp.ones_like(t), t

  def f(self, t):
    return jnp.zeros_like(_float(t))

  def g2(self, t):
    return 2.0 * _float(t)

  def sigma(self, t):
    return _float(t)

  def t_of_sigma(self, sigma, iters: int = 64):
    return _float(sigma)

  def log_snr(self, t):
    return -jnp.log(_float(t))

  def t_of_log_snr(self, lam):
    return jnp.exp(-_float(lam))

  @property
  def prior_std(self):
    return float(self.sigma_max)

  def noise_label(self, t, discrete=False):
    return _float(t)

  @property
  def default_target(self):
    return "score"


def as_gaussian_path(sde: LinearSDE) -> GaussianPath:
  """The general-path form of an SDE: same a(t), s(t), with f, g^2 re-derived by autodiff."""
  return GaussianPath(
    lambda t: sde.alpha_sigma(t)[0], lambda t: sde.alpha_sigma(t)[1], N=sde.N, T=sde.T
  )


SDES: Dict[str, Callable[..., LinearSDE]] = {
  "vpsde": VPSDE,
  "subvpsde": SubVPSDE,
  "vesde": VESDE,
  "cosine": CosinePath,
  "linear": LinearPath,
  "edm": EDMPath,
}

# Config field (config.sde.<field>) -> constructor argument, where the names differ.
FIELD_NAMES = {"num_scales": "N"}


def get_sde(name: str, **kwargs) -> LinearSDE:
  """Builds an SDE by name, e.g. get_sde('vpsde', beta_min=0.1, beta_max=20., N=1000)."""
  return lookup(SDES, name, "SDE")(**kwargs)


def sde_from_fields(name: str, fields: Dict) -> LinearSDE:
  """Builds SDE `name` from a flat dict of config fields (e.g. `config.sde`), each SDE taking the
  fields its constructor names (`num_scales` -> N) and ignoring the others."""
  cls = lookup(SDES, name, "SDE")
  params = inspect.signature(cls).parameters
  kwargs = {FIELD_NAMES.get(k, k): v for k, v in fields.items()}
  return cls(**{k: v for k, v in kwargs.items() if k in params})
