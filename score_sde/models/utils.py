"""How a network becomes a score function: decided here, once.

    score(x, t) = convert(model(x, noise_label(t)), from=target, to='score')

with the exact conversions of `score_sde.targets`. The 2021 release's conventions are the
defaults: VP-type SDEs feed label 999 t and read the output as eps (score = -output / s(t),
"scaling by the std"); VE feeds label sigma(t) and reads the output as the score.
"""
from typing import Callable

import jax

from score_sde import targets
from score_sde.sde import VESDE, LinearSDE

ApplyFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x, noise_label) -> output


def noise_label(sde: LinearSDE, t: jax.Array) -> jax.Array:
  """The network's conditioning scalar at time t, [B]: sigma(t) for VE, 999 t / T otherwise."""
  if isinstance(sde, VESDE):
    return sde.alpha_sigma(t)[1]
  return 999.0 * t / sde.T


def default_target(sde: LinearSDE) -> str:
  return "score" if isinstance(sde, VESDE) else "eps"


def resolve_target(sde: LinearSDE, target: str) -> str:
  """'auto' -> the SDE's default target; anything else is checked against the valid targets."""
  if target == "auto":
    return default_target(sde)
  if target not in targets.TARGETS:
    raise ValueError(f"unknown prediction target {target!r}; choose from {['auto', *targets.TARGETS]}")
  return target


def score_fn_from_model(apply_fn: ApplyFn, sde: LinearSDE, target: str = "auto"):
  """score_fn(x: [B, ...], t: [B]) -> [B, ...] from a network `apply_fn(x, label)` predicting `target`."""
  target = resolve_target(sde, target)

  def score_fn(x, t):
    out = apply_fn(x, noise_label(sde, t))
    return targets.convert(out, x, targets.path_coeffs(sde, t), target, "score")
  return score_fn
