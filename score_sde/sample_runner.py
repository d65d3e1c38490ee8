"""The sampling runner: config + workdir -> samples_<step>_<run>.npz and .png.

<run> names the sampler and its settings (`run_name`), so that runs with different samplers on
one checkpoint sit side by side instead of overwriting each other.

Loads the EMA parameters of the workdir's latest (or `eval.checkpoint`) checkpoint, builds the
sampler named by `sampling.method`, and draws `sampling.num_samples` samples in batches of
`sampling.batch_size`, each batch sharded over all devices when it divides evenly (on one device
otherwise), with the key fold_in(fold_in(key(seed), step), batch) (`round_key`). When the batch
size does not divide num_samples (the paper's 50,000 in batches of 1024), the last batch is drawn
whole, like every other (one compilation, the same key rule), and cut to num_samples. Long
loops run on device in `sampling.progress_chunks` jitted chunks, with a progress bar updated
between chunks.
"""

import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm import tqdm

from score_sde import runner_utils as ru
from score_sde.data import get_dataset
from score_sde.data.preprocess import postprocess_images
from score_sde.sampling import sampler_from_config
from score_sde.train_step import data_mesh


def check_sampling_config(config, sde, num_devices: int):
  """Fails before compute on bad sampling settings; returns the sampler builder."""
  s = config.sampling
  if s.num_samples <= 0 or s.batch_size <= 0:
    raise ValueError(
      f"sampling.num_samples={s.num_samples} and sampling.batch_size="
      f"{s.batch_size} must be positive"
    )
  if s.batch_size % num_devices and jax.process_count() > 1:
    raise ValueError(
      f"sampling.batch_size={s.batch_size} is not divisible by the {num_devices} devices"
    )
  if s.progress_chunks < 1:
    raise ValueError(f"sampling.progress_chunks must be >= 1, got {s.progress_chunks}")
  return sampler_from_config(s, sde)


def run_name(s) -> str:
  """A file-name tag for the sampler settings `s = config.sampling`: the method, what sets its
  path (predictor / corrector, solver and tolerances, churn, eta) and the step count, e.g.
  'pc-euler_maruyama-none-n1000', 'ode-tsit5-rtol1e-05-atol1e-05', 'ddim-eta0-n50'."""
  if s.method == "pc":
    parts = [s.predictor, s.corrector]
    if s.corrector != "none":
      parts += [f"snr{s.snr:g}", f"k{s.n_steps_each}"]
    if s.probability_flow:
      parts.append("flow")
  elif s.method == "ode":
    parts = [s.ode_method, f"rtol{s.rtol:g}", f"atol{s.atol:g}"]
  elif s.method == "edm_heun":
    parts = [f"rho{s.rho:g}", f"churn{s.s_churn:g}"]
  elif s.method == "ddim":
    parts = [f"eta{s.eta:g}"]
  else:
    parts = []
  if s.num_steps is not None:
    parts.append(f"n{s.num_steps}")
  from score_sde.config_defaults import get_default_config

  if s.eps != get_default_config().sampling.eps:  # other end times get their own files
    parts.append(f"eps{s.eps:g}")
  return "-".join([s.method] + parts)


def round_key(seed: int, step: int, i: int) -> jax.Array:
  """The key of batch (round) i of checkpoint `step`: fold_in(fold_in(key(seed), step), i), a
  function of these three only (not of how many rounds were drawn before), so that a resumed
  evaluation draws exactly the samples of an uninterrupted one."""
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), step), i)


def num_rounds(num_samples: int, batch_size: int) -> int:
  """ceil(num_samples / batch_size): the last round is drawn whole and cut."""
  return -(-num_samples // batch_size)


def to_data_range(samples: np.ndarray, is_image: bool, centered: bool):
  """(samples, extra): images clipped to the data range ([0, 1], or [-1, 1] when centered) with
  extra = {'images': uint8 [n, H, W, C]}; other data unchanged, extra = {}."""
  if not is_image:
    return samples, {}
  shown = postprocess_images(samples, centered)
  samples = (2.0 * shown - 1.0 if centered else shown).astype(np.float32)
  return samples, {"images": np.round(255.0 * shown).astype(np.uint8)}


def _chunks(num_steps: int, num_chunks: int):
  """Consecutive index blocks of equal size (the last one shorter): at most two compilations."""
  size = -(-num_steps // min(num_chunks, num_steps))
  return [np.arange(i, min(i + size, num_steps)) for i in range(0, num_steps, size)]


def compile_loop(build, score_fn, shape, mesh=None, params=None):
  """(loop, init, run) for batches of `shape` (B, ...): the sampler's loop and its jitted pieces,
  made once so that every batch (and every chunk of equal length) reuses one compilation. With a
  mesh, arrays with the batch axis are sharded over its 'data' axis.

  `score_fn(x, t)`, or with `params` given, `score_fn(params, x, t)`: the parameters then enter
  the compiled loop as an argument rather than as constants (large networks compile faster)."""
  if mesh is not None:
    batch = NamedSharding(mesh, P("data"))

    def shard(tree):
      return jax.tree.map(
        lambda v: (
          jax.lax.with_sharding_constraint(v, batch)
          if getattr(v, "ndim", 0) == len(shape) and v.shape[0] == shape[0]
          else v
        ),
        tree,
      )
  else:
    shard = lambda tree: tree
  if params is None:
    loop = build(score_fn, shape)
    return (
      loop,
      jax.jit(lambda k: shard(loop.init(k))),
      jax.jit(lambda c, idx: shard(loop.run(c, idx))),
    )
  loop_with = lambda p: build(lambda x, t: score_fn(p, x, t), shape)
  loop = loop_with(params)
  init = jax.jit(lambda p, k: shard(loop_with(p).init(k)))
  run = jax.jit(lambda p, c, idx: shard(loop_with(p).run(c, idx)))
  return loop, functools.partial(init, params), functools.partial(run, params)


def draw(
  build, score_fn, shape, key, num_chunks: int, mesh=None, progress: bool = True, compiled=None
):
  """One batch of samples of `shape` (B, ...) with the loop in `num_chunks` on-device chunks and a
  progress bar between them. `compiled`: a `compile_loop` result to reuse. Returns (x, nfe)."""
  loop, init, run = compiled or compile_loop(build, score_fn, shape, mesh)
  carry = init(key)
  chunks = _chunks(loop.num_steps, num_chunks)
  with tqdm(
    total=loop.num_steps, desc="sampling", unit="step", disable=not progress or len(chunks) == 1
  ) as bar:
    for idx in chunks:
      carry = run(carry, jnp.asarray(idx, jnp.int32))
      jax.block_until_ready(carry)
      bar.update(len(idx))
  x, nfe = loop.output(carry)
  return x, int(nfe)


def _gather(x):
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def run(config, workdir: str, *, bundle=None, mesh=None):
  """Writes workdir/samples_<step>_<run>.npz and .png (<run>: `run_name`); returns (samples, step).

  samples: [num_samples, *shape] float32 in the data set's own space (that of its batches; images
  clipped to [0, 1] or [-1, 1] when centered). The .npz holds `samples`, `nfe` (score evaluations
  per sample) and, for images, `images` (uint8 [n, H, W, C]). The PNG is a scatter plot over real
  data for vector data, an image grid for images. Prints the NFE and the wall time.
  """
  ru.apply_cpu_workaround()
  ndev = jax.device_count()
  bundle = ru.build(config) if bundle is None else bundle
  build = check_sampling_config(config, bundle.sde, ndev)
  params, step = ru.load_ema_params(config, workdir, bundle, config.eval.checkpoint, mesh)
  score_apply, shape = bundle.score_apply, bundle.shape
  s = config.sampling
  # Shard the batch over all devices when it divides evenly; a single device otherwise.
  mesh = (data_mesh() if mesh is None else mesh) if s.batch_size % ndev == 0 else None
  start = time.time()
  out, nfes = [], []
  batch_shape = (s.batch_size,) + tuple(shape)
  compiled = compile_loop(build, score_apply, batch_shape, mesh, params=params)
  for b in range(num_rounds(s.num_samples, s.batch_size)):
    x, nfe = draw(
      build,
      None,
      batch_shape,
      round_key(config.seed, step, b),
      s.progress_chunks,
      mesh,
      progress=jax.process_index() == 0,
      compiled=compiled,
    )
    out.append(_gather(x))
    nfes.append(nfe)
  samples = np.concatenate(out).astype(np.float32)[: s.num_samples]
  nfe = int(round(np.mean(nfes)))  # adaptive ODE solvers may differ between batches
  seconds = time.time() - start
  dataset = get_dataset(ru.data_spec(config), "test")
  # Pixels outside the data range are clipped: [0, 1] for display, and back to the model's
  # range (that of the data set's batches, which sample_quality compares against).
  samples, extra = to_data_range(samples, dataset.is_image, config.data.centered)
  shown = extra["images"] / 255.0 if dataset.is_image else samples
  if jax.process_index() == 0:
    stem = os.path.join(workdir, f"samples_{step}_{run_name(s)}")
    np.savez(stem + ".npz", samples=samples, nfe=nfe, sampling=s.to_json(), **extra)
    from score_sde.plotting import save_samples_png

    reference = (
      None if dataset.is_image else next(dataset.batches(len(samples), 0, config.seed + 1))
    )
    title = f"{run_name(s)} ({config.sde.name}), step {step}, NFE {nfe}"
    save_samples_png(stem + ".png", shown, reference, title)
    print(
      f"sampled {len(samples)} with {config.sampling.method} at step {step}: NFE {nfe} per sample, "
      f"{seconds:.1f} s; wrote {stem}.npz and .png",
      flush=True,
    )
  return samples, step
