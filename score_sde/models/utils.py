"""How a network becomes a function of time and a score function: decided here, once.

    pred(x, t)  = model(x, sde.noise_label(t, discrete))
    score(x, t) = convert(pred(x, t), from=target, to='score')

with the exact conversions of `score_sde.targets`. The SDE gives the label and the default
target (the 2021 release's conventions: VP-type SDEs feed label 999 t and read the output as eps,
score = -output / s(t), "scaling by the std"; VE reads the output as the score). `discrete`
marks a model trained on the SDE's discrete chain (`continuous=False` in the release): the SDE
then gives the chain's label and std. The labels, as in the release:
  VP / sub-VP   999 t / T (continuous); t (N - 1) / T (discrete DDPM), std sqrt(1 - alpha_bar_i);
  VE            sigma(t) (continuous); the int32 level index k = round((T - t)(N - 1) / T)
                (discrete SMLD), 0 at t = T, N - 1 at t = eps, from which the network reads
                sigma_k in its sigma table (`models.noise_levels`).
Training (`losses` through `pred_fn_from_model`) and sampling use the same labels.

A preconditioned model (`models/precond.py`, EDM Table 1) is a denoiser D(x_hat; sigma) of the
variance-exploding frame. On a path x_t = a(t) (x0 + sigma(t) n) it sees x_hat = x_t / a(t) at
sigma = s(t) / a(t), and

    score(x_t, t) = (1 / a) grad_{x_hat} log p(x_hat; sigma)
                  = (D(x_t / a; sigma) - x_t / a) / (a sigma^2),

so every sampler of the package (all take `score_fn(x, t)`) samples such models unchanged.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from score_sde import targets
from score_sde.models import precond as precond_lib
from score_sde.sde import LinearSDE, bcast

ApplyFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x, noise_label) -> output


def noise_label(sde: LinearSDE, t: jax.Array, discrete: bool = False) -> jax.Array:
  """The network's conditioning scalar at time t, [B] (see `LinearSDE.noise_label`)."""
  return sde.noise_label(t, discrete)


def default_target(sde: LinearSDE) -> str:
  return sde.default_target


def resolve_target(sde: LinearSDE, target: str) -> str:
  """'auto' -> the SDE's default target; anything else is checked against the valid targets."""
  if target == "auto":
    return sde.default_target
  if target not in targets.TARGETS:
    raise ValueError(
      f"unknown prediction target {target!r}; choose from {['auto', *targets.TARGETS]}"
    )
  return target


def pred_fn_from_model(apply_fn: ApplyFn, sde: LinearSDE, discrete: bool = False):
  """pred_fn(x: [B, ...], t: [B]) = apply_fn(x, sde.noise_label(t, discrete)): the network as a
  function of time, in its target's space (what the losses take)."""
  return lambda x, t: apply_fn(x, noise_label(sde, t, discrete))


def score_fn_from_model(
  apply_fn: ApplyFn,
  sde: LinearSDE,
  target: str = "auto",
  discrete: bool = False,
  preconditioning=None,
):
  """score_fn(x: [B, ...], t: [B]) -> [B, ...] from a network `apply_fn(x, label)` predicting
  `target`. With `discrete`, the network gets the chain's label (the level index for VE) and an
  eps output is scaled by the chain's std (`sde.score_std`). With a `preconditioning` (an object
  of `precond.PRECONDITIONINGS`), the network is the F of D = c_skip x + c_out F(c_in x; c_noise)
  and `target` must be 'auto'."""
  if preconditioning is not None:
    if discrete or target != "auto":
      raise ValueError(
        "a preconditioned model is a denoiser: it takes target 'auto' and the "
        f"continuous objective, got target {target!r}, discrete={discrete}"
      )
    return score_fn_from_denoiser(precond_lib.denoiser_fn(apply_fn, preconditioning), sde)
  target = resolve_target(sde, target)
  pred_fn = pred_fn_from_model(apply_fn, sde, discrete)

  def score_fn(x, t):
    out = pred_fn(x, t)
    c = targets.path_coeffs(sde, t)
    if discrete:
      c = c._replace(s=sde.score_std(t, discrete=True))
    return targets.convert(out, x, c, target, "score")

  return score_fn


def score_fn_from_denoiser(denoiser, sde: LinearSDE):
  """score_fn(x, t) = (D(x / a; sigma) - x / a) / (a sigma^2), a = a(t), sigma = s(t) / a(t),
  for a denoiser `D(x_hat: [B, ...], sigma: [B])` of the variance-exploding frame."""

  def score_fn(x, t):
    t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])
    a = sde.alpha_sigma(t)[0]
    sigma = sde.sigma(t)
    x_hat = x / bcast(a, x)
    return precond_lib.score_from_denoiser(denoiser(x_hat, sigma), x_hat, sigma) / bcast(a, x)

  return score_fn
