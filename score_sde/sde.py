"""Linear forward SDEs dx = f(t) x dt + g(t) dW and their Gaussian marginals.

Every SDE here is linear in x, so the perturbation kernel is Gaussian:

    p_t(x | x0) = N(x; a(t) x0, s(t)^2 I),   f = a'/a,   g^2 = 2 s s' - 2 (a'/a) s^2

(notes 003, "The Noising SDE"). `a` is `alpha`, `s` is `sigma` below. Concrete SDEs give
a, s, f and g^2 in closed form; `GaussianPath` derives f and g^2 from any a(t), s(t) by
automatic differentiation.

Shapes: `x: [B, ...]`, `t: [B]` (or a scalar). Per-sample coefficients broadcast over the
trailing axes of x.
"""
import dataclasses
import math
from typing import Callable, Tuple

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


def _chain_index(t: Array, N: int, T: float) -> Array:
  # floor as in the 2021 release, but with a 1e-4 margin: in float32, t = i / (N - 1) times
  # (N - 1) can land just below i and would otherwise select step i - 1.
  return jnp.floor(jnp.asarray(t) * (N - 1) / T + 1e-4).astype(jnp.int32)


class LinearSDE:
  """Interface shared by all forward SDEs of the package.

  Subclasses are frozen dataclasses with fields `N` (discretisation steps) and `T` (end time)
  and implement `alpha_sigma(t)`, `f(t)`, `g2(t)` and `prior_std`.
  """
  N: int
  T: float

  # --- coefficients -------------------------------------------------------------------
  def alpha_sigma(self, t: Array) -> Tuple[Array, Array]:
    """(a(t), s(t)) of the perturbation kernel N(a x0, s^2 I)."""
    raise NotImplementedError

  def f(self, t: Array) -> Array:
    """Scalar drift coefficient f(t) of dx = f(t) x dt + g(t) dW."""
    raise NotImplementedError

  def g2(self, t: Array) -> Array:
    """Squared diffusion coefficient g(t)^2."""
    raise NotImplementedError

  @property
  def prior_std(self) -> float:
    raise NotImplementedError

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
    var = self.prior_std ** 2
    sq = jnp.sum(z.reshape(z.shape[0], -1) ** 2, axis=-1)
    return -0.5 * d * math.log(2 * math.pi * var) - 0.5 * sq / var

  def discretize(self, x: Array, t: Array) -> Tuple[Array, Array]:
    """One step x_{i+1} = x_i + f_i + G_i z of the discretised SDE.

    Default: Euler-Maruyama with dt = T / N, f_i = f(t) x dt, G_i = g(t) sqrt(dt).
    VP and VE override this with the DDPM and SMLD chains of the paper's appendix.
    Returns (f_i: shape of x, G_i: shape of t).
    """
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

  The score enters the drift multiplied by g^2 (not g); a predictor integrating from T to 0
  steps x <- x + drift * dt with dt = -T/N.
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
    drift = drift - bcast(diffusion ** 2, x) * score * self._weight()
    diffusion = jnp.zeros_like(diffusion) if self.probability_flow else diffusion
    return drift, diffusion

  def discretize(self, x: Array, t: Array) -> Tuple[Array, Array]:
    """Reverse of the forward chain: x_i = x_{i+1} - f_{i+1} + G_{i+1}^2 score + G_{i+1} z.

    Returns (rev_f, rev_G) with rev_f = f_i - G_i^2 score (times 1/2 for the ODE), so that
    `x_prev = x - rev_f + rev_G z` (paper eq. 46-47, the reverse-diffusion predictor).
    """
    f, G = self.forward.discretize(x, t)
    rev_f = f - bcast(G ** 2, x) * self.score_fn(x, t) * self._weight()
    rev_G = jnp.zeros_like(G) if self.probability_flow else G
    return rev_f, rev_G


@dataclasses.dataclass(frozen=True)
class VPSDE(LinearSDE):
  """Variance preserving SDE (DDPM's continuum, paper eq. 11).

  dx = -1/2 beta(t) x dt + sqrt(beta(t)) dW,  beta(t) = beta_min + t (beta_max - beta_min)
  a(t) = exp(-1/2 int_0^t beta),  s(t)^2 = 1 - a(t)^2.
  """
  beta_min: float = 0.1
  beta_max: float = 20.0
  N: int = 1000
  T: float = 1.0

  def beta(self, t):
    return self.beta_min + t * (self.beta_max - self.beta_min)

  def log_mean_coeff(self, t):
    """log a(t) = -1/4 t^2 (beta_max - beta_min) - 1/2 t beta_min."""
    return -0.25 * t ** 2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

  def alpha_sigma(self, t):
    lmc = self.log_mean_coeff(jnp.asarray(t))
    # expm1 keeps s(t) accurate for small t, where 1 - exp(2 lmc) cancels.
    return jnp.exp(lmc), jnp.sqrt(-jnp.expm1(2.0 * lmc))

  def f(self, t):
    return -0.5 * self.beta(jnp.asarray(t))

  def g2(self, t):
    return self.beta(jnp.asarray(t))

  @property
  def prior_std(self):
    return 1.0

  @property
  def discrete_betas(self) -> Array:
    """DDPM's beta_i = beta_min / N + i / (N - 1) (beta_max - beta_min) / N, i = 0..N-1."""
    return jnp.linspace(self.beta_min / self.N, self.beta_max / self.N, self.N)

  @property
  def alphas_cumprod(self) -> Array:
    """DDPM's alpha_bar_i = prod_{j <= i} (1 - beta_j)."""
    return jnp.cumprod(1.0 - self.discrete_betas)

  def timestep(self, t: Array) -> Array:
    """Index i of the discrete chain for continuous time t: floor(t (N - 1) / T)."""
    return _chain_index(t, self.N, self.T)

  def discretize(self, x, t):
    """DDPM chain x_{i+1} = sqrt(1 - beta_i) x_i + sqrt(beta_i) z  (paper eq. 47)."""
    beta = self.discrete_betas[self.timestep(t)]
    f = bcast(jnp.sqrt(1.0 - beta), x) * x - x
    return f, jnp.sqrt(beta)


@dataclasses.dataclass(frozen=True)
class SubVPSDE(VPSDE):
  """Sub-VP SDE (paper eq. 17), whose variance is bounded by the VP one at every t.

  dx = -1/2 beta(t) x dt + sqrt(beta(t) (1 - exp(-2 int_0^t beta))) dW
  a(t) = exp(-1/2 int_0^t beta),  s(t) = 1 - exp(-int_0^t beta).
  """

  def alpha_sigma(self, t):
    lmc = self.log_mean_coeff(jnp.asarray(t))
    return jnp.exp(lmc), -jnp.expm1(2.0 * lmc)

  def g2(self, t):
    t = jnp.asarray(t)
    return self.beta(t) * -jnp.expm1(4.0 * self.log_mean_coeff(t))

  # The sub-VP SDE has no DDPM chain of its own: Euler-Maruyama, as in the paper.
  discretize = LinearSDE.discretize


@dataclasses.dataclass(frozen=True)
class VESDE(LinearSDE):
  """Variance exploding SDE (SMLD's continuum, paper eq. 9).

  dx = sqrt(d sigma(t)^2 / dt) dW,  sigma(t) = sigma_min (sigma_max / sigma_min)^t,
  a(t) = 1, s(t) = sigma(t).

  As in the paper, s(0) = sigma_min > 0: x0 is taken to carry sigma_min noise already, so the
  moment equation v' = g^2 holds with v(0) = sigma_min^2.
  """
  sigma_min: float = 0.01
  sigma_max: float = 50.0
  N: int = 1000
  T: float = 1.0

  def sigma(self, t):
    return self.sigma_min * (self.sigma_max / self.sigma_min) ** jnp.asarray(t)

  def alpha_sigma(self, t):
    s = self.sigma(t)
    return jnp.ones_like(s), s

  def f(self, t):
    return jnp.zeros_like(jnp.asarray(t, dtype=jnp.result_type(float)))

  def g2(self, t):
    return self.sigma(t) ** 2 * (2.0 * math.log(self.sigma_max / self.sigma_min))

  @property
  def prior_std(self):
    return self.sigma_max

  @property
  def discrete_sigmas(self) -> Array:
    """SMLD's sigma_i, geometric from sigma_min to sigma_max, i = 0..N-1."""
    return jnp.exp(jnp.linspace(math.log(self.sigma_min), math.log(self.sigma_max), self.N))

  def timestep(self, t: Array) -> Array:
    """Index i of the discrete chain for continuous time t: floor(t (N - 1) / T)."""
    return _chain_index(t, self.N, self.T)

  def discretize(self, x, t):
    """SMLD chain x_{i+1} = x_i + sqrt(sigma_{i+1}^2 - sigma_i^2) z  (paper eq. 46)."""
    i = self.timestep(t)
    sigma = self.discrete_sigmas[i]
    prev = jnp.where(i == 0, 0.0, self.discrete_sigmas[jnp.maximum(i - 1, 0)])
    return jnp.zeros_like(x), jnp.sqrt(sigma ** 2 - prev ** 2)


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
    t = jnp.asarray(t, dtype=jnp.result_type(float))
    return self.alpha_fn(t), self.sigma_fn(t)

  def _derivs(self, t):
    t = jnp.asarray(t, dtype=jnp.result_type(float))
    one = jnp.ones_like(t)
    a, da = jax.jvp(self.alpha_fn, (t,), (one,))
    s, ds = jax.jvp(self.sigma_fn, (t,), (one,))
    return a, da, s, ds

  def f(self, t):
    a, da, _, _ = self._derivs(t)
    return da / a

  def g2(self, t):
    a, da, s, ds = self._derivs(t)
    return 2.0 * s * ds - 2.0 * (da / a) * s ** 2

  @property
  def prior_std(self):
    return float(self.sigma_fn(jnp.asarray(self.T, dtype=jnp.float32)))


def _cosine_alpha(t, s):
  # Nichol & Dhariwal's alpha_bar(t) = cos^2(pi/2 (t + s)/(1 + s)) / cos^2(pi/2 s/(1 + s)); a = sqrt(alpha_bar).
  return jnp.cos(0.5 * jnp.pi * (t + s) / (1 + s)) / math.cos(0.5 * math.pi * s / (1 + s))


def cosine_path(offset: float = 0.008, N: int = 1000, T: float = 0.999) -> GaussianPath:
  """Cosine schedule (Nichol & Dhariwal 2021) as a variance-preserving Gaussian path.

  a(t) = cos(pi/2 (t + offset)/(1 + offset)) / cos(pi/2 offset/(1 + offset)), s = sqrt(1 - a^2).
  T < 1 because a(1) = 0 makes f = a'/a infinite; at T = 0.999, a(T) ~ 1.6e-3.
  """
  alpha = lambda t: _cosine_alpha(t, offset)
  sigma = lambda t: jnp.sqrt(jnp.clip(1.0 - _cosine_alpha(t, offset) ** 2, 0.0))
  return GaussianPath(alpha, sigma, N=N, T=T, name="cosine")


def as_gaussian_path(sde: LinearSDE) -> GaussianPath:
  """The general-path form of an SDE: same a(t), s(t), with f, g^2 re-derived by autodiff."""
  return GaussianPath(lambda t: sde.alpha_sigma(t)[0], lambda t: sde.alpha_sigma(t)[1],
                      N=sde.N, T=sde.T)


SDES = {
    "vpsde": VPSDE,
    "subvpsde": SubVPSDE,
    "vesde": VESDE,
    "cosine": cosine_path,
}


def get_sde(name: str, **kwargs) -> LinearSDE:
  """Builds an SDE by name, e.g. get_sde('vpsde', beta_min=0.1, beta_max=20., N=1000)."""
  return lookup(SDES, name, "SDE")(**kwargs)
