"""The pure training step: (state, batches, key) -> (state, metrics), jitted over a device mesh.

One call runs `n` optimizer steps over batches [n, B, ...] as a loop that is compiled once
(`lax.scan`), or, for convolutional networks on CPU, unrolled (see `_loop`). Step s draws its noise
from `fold_in(key, s)`, so a run resumed from a checkpoint at step s draws what an uninterrupted
run would. The batch axis is sharded over the mesh axis 'data'; parameters, EMA and optimizer
state are replicated; XLA inserts the gradient all-reduce.
"""

from typing import Any, Callable, Optional

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from score_sde.registry import lookup

# loss_fn(key, apply_fn, params, x0, train_rngs) -> (loss, per-sample losses)
LossFn = Callable[..., Any]


@flax.struct.dataclass
class TrainState:
  """step: int32 scalar; params, ema_params: network parameters; opt_state: optax state."""

  step: jax.Array
  params: Any
  ema_params: Any
  opt_state: Any


OPTIMIZERS = {"adam": optax.adam, "adamw": optax.adamw}


def make_optimizer(
  name: str = "adam",
  lr: float = 2e-4,
  beta1: float = 0.9,
  beta2: float = 0.999,
  eps: float = 1e-8,
  weight_decay: float = 0.0,
  warmup: int = 0,
  grad_clip: float = 1.0,
  decay_steps: int = 0,
  total_steps: int = 0,
) -> optax.GradientTransformation:
  """Adam(W) with global-norm clipping and the learning rate

      lr(step) = lr min(step / warmup, 1, (total_steps - step) / decay_steps),

  a linear warm-up (paper configs) and, with `decay_steps` > 0, a linear decay to 0 over the
  last `decay_steps` of `total_steps` (warmup-stable-decay; at most the steps after the warm-up,
  so that a shortened run still ends at 0). The decay averages out the step-to-step noise of the
  weights that a constant rate leaves in short runs.
  """
  opt = lookup(OPTIMIZERS, name, "optimizer")
  schedule = optax.linear_schedule(0.0, lr, warmup) if warmup > 0 else lr
  decay_steps = min(decay_steps, total_steps - warmup)
  if decay_steps > 0:
    stable = optax.constant_schedule(lr)
    decay = optax.linear_schedule(lr, 0.0, decay_steps)
    parts = ([schedule] if warmup > 0 else []) + [stable, decay]
    bounds = ([warmup] if warmup > 0 else []) + [total_steps - decay_steps]
    schedule = optax.join_schedules(parts, bounds)
  kwargs = dict(b1=beta1, b2=beta2, eps=eps)
  if name == "adamw":
    kwargs["weight_decay"] = weight_decay
  elif weight_decay:
    raise ValueError("weight_decay needs optimizer 'adamw'")
  parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip > 0 else []
  return optax.chain(*parts, opt(schedule, **kwargs))


def init_state(params: Any, optimizer: optax.GradientTransformation) -> TrainState:
  # The EMA starts as a copy: params and ema_params must be distinct buffers to be donated.
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    ema_params=jax.tree.map(jnp.array, params),
    opt_state=optimizer.init(params),
  )


def ema_decay(step: jax.Array, ema_rate: float, warmup: bool = True) -> jax.Array:
  """EMA decay at optimizer step `step` (1 for the first update).

  With warm-up: d(step) = min(ema_rate, (1 + step) / (10 + step)), so the initialisation's weight in
  the average after n steps, prod_s d(s) = 10! (n + 1)! / (n + 10)! (while d < ema_rate), is about
  4e6 / n^9 instead of ema_rate^n (22% after 1500 steps at 0.999). The 2021 release used the fixed
  rate (`warmup=False`); its EMA weights needed tens of thousands of steps to forget the random
  initialisation, which short runs never reach.
  """
  if not warmup:
    return jnp.asarray(ema_rate, jnp.float32)
  s = jnp.asarray(step, jnp.float32)
  return jnp.minimum(jnp.float32(ema_rate), (1.0 + s) / (10.0 + s))


def _loop(body, carry, xs, unroll: bool):
  """lax.scan, or the same loop unrolled at trace time (still one compiled device call).

  XLA:CPU runs convolution weight-gradients inside a while loop 50-100x slower than the same
  ops outside one (measured with jax 0.10), so on CPU the steps are unrolled instead.
  """
  if not unroll:
    return jax.lax.scan(body, carry, xs)
  n = jax.tree.leaves(xs)[0].shape[0]
  outs = []
  for i in range(n):
    carry, out = body(carry, jax.tree.map(lambda v: v[i], xs))
    outs.append(out)
  return carry, jax.tree.map(lambda *v: jnp.stack(v), *outs)


def default_unroll() -> bool:
  return jax.default_backend() == "cpu"


def make_train_steps(
  loss_fn: Callable,
  optimizer: optax.GradientTransformation,
  *,
  ema_rate: float,
  ema_warmup: bool = True,
  micro_batches: int = 1,
  unroll: Optional[bool] = None,
):
  """Returns train_steps(state, batches [n, B, ...], key) -> (state, metrics {name: [n]}).

  `loss_fn(key, params, x0) -> (loss, per-sample losses)`. With micro_batches > 1 each step
  averages the gradients of B / micro_batches-sized slices (gradient accumulation).
  ema_params <- d ema_params + (1 - d) params with d = `ema_decay(step, ema_rate, ema_warmup)`.
  `unroll` (default: on CPU) unrolls the n steps at trace time instead of `lax.scan`.
  Metrics per step: loss, grad_norm, and params_finite (1.0 when every parameter is finite).
  """
  unroll = default_unroll() if unroll is None else unroll
  grad_fn = jax.value_and_grad(lambda p, k, x: loss_fn(k, p, x)[0])

  def one_step(state: TrainState, batch, key):
    step_key = jax.random.fold_in(key, state.step)
    if micro_batches == 1:
      loss, grads = grad_fn(state.params, step_key, batch)
    else:
      slices = jax.tree.map(lambda b: b.reshape((micro_batches, -1) + b.shape[1:]), batch)

      def acc(carry, inp):
        j, x = inp
        loss, g = grad_fn(state.params, jax.random.fold_in(step_key, j), x)
        return jax.tree.map(jnp.add, carry, (loss, g)), None

      zero = (jnp.zeros(()), jax.tree.map(jnp.zeros_like, state.params))
      (loss, grads), _ = _loop(acc, zero, (jnp.arange(micro_batches), slices), unroll)
      loss, grads = jax.tree.map(lambda v: v / micro_batches, (loss, grads))
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    decay = ema_decay(state.step + 1, ema_rate, ema_warmup)
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, params)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]))
    metrics = {
      "loss": loss,
      "grad_norm": optax.tree_utils.tree_norm(grads),
      "params_finite": finite.astype(jnp.float32),
    }
    return TrainState(state.step + 1, params, ema, opt_state), metrics

  def train_steps(state, batches, key):
    return _loop(lambda s, b: one_step(s, b, key), state, batches, unroll)

  return train_steps


def data_mesh(devices=None) -> Mesh:
  """1-D mesh over all (global) devices, axis 'data'."""
  import numpy as np

  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ("data",))


def jit_train_steps(train_steps, mesh: Mesh):
  """jit with replicated state, batches [n, B, ...] sharded along B, state donated."""
  repl = NamedSharding(mesh, P())
  data = NamedSharding(mesh, P(None, "data"))
  return jax.jit(
    train_steps, in_shardings=(repl, data, repl), out_shardings=(repl, repl), donate_argnums=(0,)
  )


def shard_batches(local_batches, mesh: Mesh) -> jax.Array:
  """Host-local numpy batches [n, B_local, ...] -> a global array sharded over 'data'."""
  return jax.make_array_from_process_local_data(NamedSharding(mesh, P(None, "data")), local_batches)
