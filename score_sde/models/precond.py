"""Preconditioning of a network into a denoiser (Karras et al. 2022, "EDM", section 5, Table 1).

A raw network F(x, label) (any registered model) becomes the denoiser

    D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma)),

where x = x0 + sigma n is a noisy sample in the variance-exploding frame: on a general path
x_t = a(t) (x0 + sigma(t) n), the denoiser acts on x_t / a(t) with sigma = s(t) / a(t). The
denoiser and the score of p(x; sigma) = p_data * N(0, sigma^2 I) are related by Tweedie's formula

    grad_x log p(x; sigma) = (D(x; sigma) - x) / sigma^2.

Table 1 of the paper (the three rows written here):
  EDM: c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2),
       c_in = 1 / sqrt(sigma^2 + sd^2), c_noise = ln(sigma) / 4            (sd = sigma_data)
  VP:  c_skip = 1, c_out = -sigma, c_in = 1 / sqrt(sigma^2 + 1), c_noise = (M - 1) t(sigma)
       (F predicts eps from x_t = a x_hat, a = c_in, with the 2021 VP label 999 t)
  VE:  c_skip = 1, c_out = sigma, c_in = 1, c_noise = ln(sigma / 2)
       (F = sigma times the score: the 2021 NCSN++'s output before its division by sigma)
Each row's loss weight is lambda(sigma) = 1 / c_out(sigma)^2, under which
lambda |D - x0|^2 = |F - F_target|^2 with the effective training target
F_target = (x0 - c_skip x) / c_out. For EDM's row, data of variance sd^2 give c_in x and F_target
unit variance at every sigma (the design principle of EDM section 5).

Shapes: `x: [B, ...]`, `sigma: [B]`; coefficients are [B] and broadcast over x's trailing axes.
"""

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from score_sde.registry import lookup
from score_sde.sde import VPSDE, bcast

Array = jax.Array
ApplyFn = Callable[[Array, Array], Array]  # F(x, noise_label) -> array shaped like x
DenoiserFn = Callable[[Array, Array], Array]  # D(x, sigma) -> array shaped like x


class PrecondCoeffs(NamedTuple):
  """c_skip, c_out, c_in, c_noise at a batch of sigmas, each [B]."""

  c_skip: Array
  c_out: Array
  c_in: Array
  c_noise: Array


@dataclasses.dataclass(frozen=True)
class EDMPrecond:
  """EDM's preconditioning (Table 1, "Ours"); sigma_data is the data's standard deviation."""

  sigma_data: float = 0.5
  # c_noise = ln(sigma) / 4 is negative below sigma = 1: no log-taking embedding can read it.
  positive_noise_label = False

  def coeffs(self, sigma: Array) -> PrecondCoeffs:
    sd2 = self.sigma_data**2
    r = sigma**2 + sd2
    return PrecondCoeffs(
      c_skip=sd2 / r,
      c_out=sigma * self.sigma_data * jax.lax.rsqrt(r),
      c_in=jax.lax.rsqrt(r),
      c_noise=0.25 * jnp.log(sigma),
    )


@dataclasses.dataclass(frozen=True)
class VPPrecond:
  """The VP SDE's parametrisation (Table 1, "VP"): an eps network labelled (M - 1) t(sigma),
  t(sigma) the inverse of the VP SDE's sigma(t) = sqrt(exp(beta_min t + (beta_max - beta_min)
  t^2 / 2) - 1)."""

  beta_min: float = 0.1
  beta_max: float = 20.0
  M: int = 1000
  positive_noise_label = True  # (M - 1) t > 0

  def coeffs(self, sigma: Array) -> PrecondCoeffs:
    t = VPSDE(beta_min=self.beta_min, beta_max=self.beta_max).t_of_sigma(sigma)
    return PrecondCoeffs(
      c_skip=jnp.ones_like(sigma),
      c_out=-sigma,
      c_in=jax.lax.rsqrt(sigma**2 + 1.0),
      c_noise=(self.M - 1) * t,
    )


@dataclasses.dataclass(frozen=True)
class VEPrecond:
  """The VE SDE's parametrisation (Table 1, "VE"): F = sigma * score, labelled ln(sigma / 2)."""

  positive_noise_label = False  # ln(sigma / 2) < 0 below sigma = 2

  def coeffs(self, sigma: Array) -> PrecondCoeffs:
    return PrecondCoeffs(
      c_skip=jnp.ones_like(sigma),
      c_out=sigma,
      c_in=jnp.ones_like(sigma),
      c_noise=jnp.log(0.5 * sigma),
    )


PRECONDITIONINGS: dict[str, Callable] = {"edm": EDMPrecond, "vp": VPPrecond, "ve": VEPrecond}
# Config field -> constructor argument, where the names differ (VP's M is the SDE's N).
FIELD_NAMES = {"num_scales": "M"}


def get_preconditioning(name: str, fields: Optional[Mapping] = None):
  """Preconditioning `name` built from a flat dict of fields (e.g. sigma_data, beta_min,
  beta_max, num_scales), each taking those its constructor names and ignoring the others."""
  cls = lookup(PRECONDITIONINGS, name, "preconditioning")
  params = inspect.signature(cls).parameters
  kwargs = {FIELD_NAMES.get(k, k): v for k, v in dict(fields or {}).items()}
  return cls(**{k: v for k, v in kwargs.items() if k in params})


def denoise(apply_fn: ApplyFn, precond, x: Array, sigma: Array) -> Array:
  """D(x; sigma) = c_skip x + c_out F(c_in x; c_noise); x: [B, ...], sigma: [B] -> [B, ...]."""
  c = precond.coeffs(sigma)
  out = apply_fn(bcast(c.c_in, x) * x, c.c_noise)
  return bcast(c.c_skip, x) * x + bcast(c.c_out, x) * out


def denoiser_fn(apply_fn: ApplyFn, precond) -> DenoiserFn:
  """D(x, sigma) of a raw network `apply_fn(x, label)` under `precond`."""
  return lambda x, sigma: denoise(apply_fn, precond, x, sigma)


def loss_weight(precond, sigma: Array) -> Array:
  """lambda(sigma) = 1 / c_out(sigma)^2 (EDM eq. 8's weight); for EDM's row
  (sigma^2 + sd^2) / (sigma sd)^2. Shape of sigma."""
  return 1.0 / precond.coeffs(sigma).c_out ** 2


def network_target(precond, x0: Array, x: Array, sigma: Array) -> Array:
  """F_target = (x0 - c_skip x) / c_out: what F learns when D learns x0 (EDM eq. 8)."""
  c = precond.coeffs(sigma)
  return (x0 - bcast(c.c_skip, x) * x) / bcast(c.c_out, x)


def score_from_denoiser(d: Array, x: Array, sigma: Array) -> Array:
  """grad_x log p(x; sigma) = (D(x; sigma) - x) / sigma^2, [B, ...]."""
  return (d - x) / bcast(sigma, x) ** 2


def denoiser_from_score(score: Array, x: Array, sigma: Array) -> Array:
  """D(x; sigma) = x + sigma^2 grad_x log p(x; sigma) (Tweedie), [B, ...]."""
  return x + bcast(sigma, x) ** 2 * score


def sample_log_normal_sigma(key: Array, n: int, p_mean: float = -1.2, p_std: float = 1.2) -> Array:
  """EDM's training distribution ln sigma ~ N(P_mean, P_std^2), [n]."""
  return jnp.exp(p_mean + p_std * jax.random.normal(key, (n,)))
