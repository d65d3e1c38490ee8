"""Pictures of the model during training (`training.snapshot_sampling`, as in the 2021 release).

At every checkpoint step the runner draws `training.snapshot_num_samples` samples with the EMA
parameters and the configured sampler (`config.sampling`) and writes

    workdir/snapshots/samples_<step>.png     an image grid (images) or a scatter over data (2-D)
    workdir/snapshots/samples_<step>.npz     the samples in the model's space, [n, *shape]

and the picture to TensorBoard (tag `samples`). The key is fold_in(key(seed + 2), step), so a
resumed run draws the same snapshot at a step as an uninterrupted one.
"""

import functools
import os

import jax
import numpy as np

from score_sde.data.preprocess import postprocess_images
from score_sde.plotting import image_grid, save_samples_png, upscale
from score_sde.sample_runner import compile_loop, draw
from score_sde.sampling import sampler_from_config


class SnapshotSampler:
  """Draws and writes one snapshot per call; the sampling loop compiles once, on first use."""

  def __init__(self, config, bundle, dataset, workdir: str):
    self.build = sampler_from_config(config.sampling, bundle.sde)
    self.shape = (config.training.snapshot_num_samples,) + tuple(bundle.shape)
    self.score_apply = bundle.score_apply
    self.is_image = dataset.is_image
    self.centered = config.data.centered
    self.key = jax.random.key(config.seed + 2)
    self.directory = os.path.join(workdir, "snapshots")
    self.title = f"{config.sampling.method} ({config.sde.name})"
    # 2-D data: the samples are drawn over as many real points, fixed for the whole run.
    self.reference = (
      None
      if dataset.is_image
      else next(dataset.batches(max(self.shape[0], 512), 0, config.seed + 1))
    )
    self._compiled = None

  def __call__(self, ema_params, step: int, writer=None, write: bool = True) -> str:
    """Samples with `ema_params`, writes the PNG and .npz (and to `writer`); returns the PNG path.
    Every process calls this (the parameters may span processes); only `write` ones write."""
    if self._compiled is None:
      loop, init, run = compile_loop(self.build, self.score_apply, self.shape, params=ema_params)
      self._compiled = (loop, init.func, run.func)  # jitted, parameters as their first argument
    loop, init, run = self._compiled
    init, run = functools.partial(init, ema_params), functools.partial(run, ema_params)
    x, _ = draw(
      self.build,
      None,
      self.shape,
      jax.random.fold_in(self.key, step),
      1,
      progress=False,
      compiled=(loop, init, run),
    )
    x = np.asarray(x, np.float32)
    stem = os.path.join(self.directory, f"samples_{step}")
    if not write:
      return stem + ".png"
    os.makedirs(self.directory, exist_ok=True)
    np.savez(stem + ".npz", samples=x)
    shown = postprocess_images(x, self.centered) if self.is_image else x
    save_samples_png(stem + ".png", shown, self.reference, f"{self.title}, step {step}")
    if writer is not None:
      if self.is_image:
        grid = upscale(image_grid(shown), 256)
        writer.add_image(
          "samples",
          np.repeat(grid, 3, -1) if grid.shape[-1] == 1 else grid,
          step,
          dataformats="HWC",
        )
      else:
        writer.add_image("samples", _png_pixels(stem + ".png"), step, dataformats="HWC")
    return stem + ".png"


def _png_pixels(path: str) -> np.ndarray:
  """The RGB pixels [H, W, 3] in [0, 1] of a PNG written by matplotlib."""
  import matplotlib.image

  return np.asarray(matplotlib.image.imread(path))[..., :3]
