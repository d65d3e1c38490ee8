"""The one sampler protocol, and the one rule for turning a key into the starting state x_T.

Every sampler of the package is a function

    sample(key, sde, score_fn, shape, *, num_steps, eps, x_init=None, ...) -> (x, nfe)

with `num_steps` the number of time steps (the time grid has num_steps + 1 points, from T to
the cut-off t_eps) and `nfe` the number of score evaluations per sample. Samplers whose time loop
can run in pieces (for a progress bar between on-device chunks) also expose it as a `LoopSampler`.

Starting state: `key` is split once as `key_loop, key_init = jax.random.split(key)`;
x_T = sde.prior_sample(key_init, shape) unless `x_init` (the sample at t = T) is given, and any
noise the loop draws comes from `key_loop` (step i from fold_in(key_loop, i)). So passing
`x_init = initial_state(key, sde, shape)` reproduces the samples of `key`.

Projection hook (conditional generation: inpainting, colorization): every sampler takes
`project=None` or a function `project(x, t, key) -> x` (x: [B, ...], t: [B]) that maps a state
at time t onto the constraint set at that time, e.g. known pixels re-noised to t. A sampler
applies it to x_T and after every step, at the time the state has reached; `key=None` asks for
the noise-free version (samplers pass it for the `x_mean` they return with noise removal). Its
keys come from their own stream, `projection_key(key_loop, point, sub)`, so a sampler without a
projection draws exactly the same noise as before.
"""

from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from score_sde.sde import LinearSDE

Array = jax.Array
Projection = Callable[[Array, Array, Optional[Array]], Array]  # project(x, t, key) -> x

# fold_in constant of the projection's key stream (disjoint from the step indices i of the loop).
_PROJECTION_STREAM = 0x7072_6F6A


class LoopSampler(NamedTuple):
  """A sampler whose time loop can run in pieces: `carry = init(key)`, then `run(carry, idx)`
  over consecutive step indices (an int array; a `lax.scan`), then `output(carry) -> (x, nfe)`.
  Splitting idx into chunks gives bitwise the same samples: step i's noise is fold_in(key, i).
  `nfe` is the count known before running (None for adaptive solvers)."""

  init: Callable
  run: Callable
  output: Callable
  num_steps: int
  nfe: Optional[int]


def split_key(key: Array) -> Tuple[Array, Array]:
  """(key_loop, key_init): the documented split of a sampler's key."""
  key_loop, key_init = jax.random.split(key)
  return key_loop, key_init


def initial_state(key: Array, sde: LinearSDE, shape) -> Array:
  """x_T that a sampler called with `key` (and no x_init) starts from."""
  return sde.prior_sample(split_key(key)[1], shape)


def start(key: Array, sde: LinearSDE, shape, x_init: Optional[Array] = None):
  """(key_loop, x_T) by the module's rule; `x_init`, when given, is x_T."""
  key_loop, key_init = split_key(key)
  x = sde.prior_sample(key_init, shape) if x_init is None else x_init
  return key_loop, x


def projection_key(key_loop: Array, point, sub: int = 0) -> Array:
  """Key of the projection applied at grid point `point` (0: x_T; i + 1: after step i); `sub`
  tells apart several projections at one point (pc: after the corrector and after the predictor)."""
  key = jax.random.fold_in(jax.random.fold_in(key_loop, _PROJECTION_STREAM), point)
  return jax.random.fold_in(key, sub)


def project_at(project: Optional[Projection], x: Array, t, key: Optional[Array]) -> Array:
  """project(x, t, key) with t broadcast to [B]; x unchanged when there is no projection."""
  if project is None:
    return x
  return project(x, jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1]), key)


def one_shot(sample_fn: Callable, nfe: Optional[int]) -> LoopSampler:
  """A single-call sampler `sample_fn(key) -> (x, nfe)` as a LoopSampler of one step."""
  return LoopSampler(
    init=lambda key: key,
    run=lambda key, idx: sample_fn(key),
    output=lambda out: out,
    num_steps=1,
    nfe=nfe,
  )


def run_loop(loop: LoopSampler, key: Array):
  """Runs a LoopSampler in one piece: (x, nfe)."""
  return loop.output(loop.run(loop.init(key), jnp.arange(loop.num_steps)))
