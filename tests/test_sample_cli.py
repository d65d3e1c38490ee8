"""Sampling runner and CLI: a tiny trained model -> samples_<step>_<run>.npz + PNG; chunked = one
loop; runs with different samplers do not overwrite each other."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from score_sde import runner_utils as ru, sample_runner
from score_sde.checkpoint import Checkpointer, check_run_record
from score_sde.sampling.dispatch import SAMPLERS
from score_sde.train_step import data_mesh

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(REPO, "configs", "toy", "vp_eight_gaussians.py")
# Sampling settings on top of the session's toy run (conftest.py: 20 training steps).
SAMPLING = {
  "sampling.num_steps": 40,
  "sampling.num_samples": 64,
  "sampling.batch_size": 32,
  "sampling.progress_chunks": 3,
}


@pytest.fixture(scope="module")
def trained(toy_run):
  return toy_run.workdir


@pytest.fixture
def toy_config(toy_run):
  """The toy run's config with the sampling settings above and `extra` on top."""
  return lambda **extra: toy_run.config({**SAMPLING, **extra})


def test_run_writes_npz_and_png(trained, toy_config):
  config = toy_config()
  samples, step = sample_runner.run(config, trained)
  assert step == 20 and samples.shape == (64, 2) and np.all(np.isfinite(samples))
  stem = os.path.join(trained, "samples_20_pc-euler_maruyama-none-n40")
  with np.load(stem + ".npz") as f:
    np.testing.assert_array_equal(f["samples"], samples)
    assert int(f["nfe"]) == 40  # Euler-Maruyama, no corrector: one score evaluation a step
  png = stem + ".png"
  with open(png, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  # The same config and checkpoint give the same samples (explicit key from config.seed).
  np.testing.assert_array_equal(sample_runner.run(config, trained)[0], samples)
  # 50 samples in batches of 32 (as the paper's 50,000 in 1024s): the second batch is drawn
  # whole with its own key and cut, so the 50 are the first 50 of the 64.
  cut, _ = sample_runner.run(toy_config(**{"sampling.num_samples": 50}), trained)
  np.testing.assert_array_equal(cut, samples[:50])


@pytest.mark.slow  # two more sampler compilations; the run names are test_run_writes_npz_and_png's
def test_two_samplers_write_side_by_side(trained, toy_config):
  """Files are named by sampler and settings: a DDIM run does not overwrite the PC run's."""
  from score_sde.evaluate import sample_quality

  configs = {
    "pc-euler_maruyama-none-n40": toy_config(),
    "ddim-eta0-n10": toy_config(**{"sampling.method": "ddim", "sampling.num_steps": 10}),
  }
  drawn = {}
  for name, config in configs.items():
    assert sample_runner.run_name(config.sampling) == name
    drawn[name], _ = sample_runner.run(config, trained)
    sample_quality(config, trained, drawn[name], 20)
  for name, samples in drawn.items():
    with np.load(os.path.join(trained, f"samples_20_{name}.npz")) as f:
      np.testing.assert_array_equal(f["samples"], samples)
    assert os.path.exists(os.path.join(trained, f"samples_20_{name}.png"))
    assert os.path.exists(os.path.join(trained, f"quality_20_{name}.json"))
  assert not np.array_equal(*drawn.values())


@pytest.mark.parametrize(
  "sampling",
  [
    dict(predictor="euler_maruyama", corrector="none"),
    pytest.param(  # a corrector's loop: one more sampler compiled, in the slow stage
      dict(predictor="reverse_diffusion", corrector="langevin", n_steps_each=2),
      marks=pytest.mark.slow,
    ),
  ],
)
def test_chunked_loop_equals_one_loop(trained, toy_config, sampling):
  """The progress bar's chunks change nothing: 7 on-device chunks = 1, bit for bit (8 devices)."""
  config = toy_config(**{f"sampling.{k}": v for k, v in sampling.items()})
  sde = ru.build_sde(config)
  build = sample_runner.check_sampling_config(config, sde, jax.device_count())
  score_fn, _, shape, _ = ru.load_score_fn(config, trained)
  key, batch = jax.random.key(7), (32,) + tuple(shape)
  mesh = data_mesh()
  one, nfe1 = sample_runner.draw(build, score_fn, batch, key, 1, mesh, progress=False)
  seven, nfe7 = sample_runner.draw(build, score_fn, batch, key, 7, mesh, progress=False)
  np.testing.assert_array_equal(np.asarray(one), np.asarray(seven))
  assert nfe1 == nfe7 == 40 * (1 + 2 * (sampling["corrector"] != "none"))
  # Sharding over the 8 devices changes the reduction order at most.
  single, _ = sample_runner.draw(build, score_fn, batch, key, 1, None, progress=False)
  np.testing.assert_allclose(np.asarray(single), np.asarray(one), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
  "extra,match",
  [
    ({"sampling.batch_size": 0}, "must be positive"),
    ({"sampling.predictor": "no_such"}, r"unknown predictor 'no_such'; choose from"),
    ({"sampling.method": "no_such"}, r"unknown sampling method 'no_such'; choose from"),
    ({"sde.name": "subvpsde", "sampling.predictor": "ancestral_sampling"}, "ancestral"),
  ],
)
def test_bad_sampling_config_fails_before_loading(tmp_path, toy_config, extra, match):
  """Config errors come first, even in a workdir without any checkpoint."""
  with pytest.raises(ValueError, match=match):
    sample_runner.run(toy_config(**extra), str(tmp_path))


@pytest.mark.slow  # a CLI process; in-process runs above, the CLI's errors in test_validate
def test_cli_sample_mode(trained, toy_run):
  flags = [f"--config.{k}={v}" for k, v in {**toy_run.overrides, **SAMPLING}.items()]
  cmd = [
    sys.executable,
    "-m",
    "score_sde.main",
    f"--config={TOY}",
    f"--workdir={trained}",
    "--mode=sample",
    "--config.seed=3",
  ] + flags
  out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "NFE 40" in out.stdout
  with np.load(os.path.join(trained, "samples_20_pc-euler_maruyama-none-n40.npz")) as f:
    assert f["samples"].shape == (64, 2)


@pytest.mark.slow  # trains an image model first
def test_image_run_writes_clipped_samples_and_a_grid(tmp_path):
  """Images: samples clipped to the data range ([-1, 1], centered), uint8 images, a grid PNG."""
  config = ru.load_config(os.path.join(REPO, "configs", "digits", "vp_small_unet.py"))
  config.data.image_size = 8
  config.model.nf = 8
  config.model.ch_mult = (1,)
  config.training.update(batch_size=8, sample_at_end=False)
  # Two steps in two chunks of one: the chunked image loop with a single compiled chunk.
  config.sampling.update(num_steps=2, num_samples=16, batch_size=8, progress_chunks=2)
  workdir = str(tmp_path)
  # On one device: the image path is what is tested here (sharding: the toy tests above), and
  # partitioning the U-Net over the 8 forced host devices only lengthens its compiles.
  one = data_mesh(jax.devices()[:1])
  # An untrained model's checkpoint at step 0 (training an image model through train():
  # test_digits_train.py): what the network has learnt does not matter here, only how its
  # samples are clipped, stored and drawn.
  bundle = ru.build(config)
  ckpt = Checkpointer(workdir)
  ckpt.save(0, jax.jit(bundle.init_state)(jax.random.key(0)), force=True)
  ckpt.close()
  check_run_record(workdir, bundle.run_record)
  samples, step = sample_runner.run(config, workdir, mesh=one)
  assert samples.shape == (16, 8, 8, 1) and samples.min() >= -1.0 and samples.max() <= 1.0
  stem = os.path.join(workdir, f"samples_{step}_{sample_runner.run_name(config.sampling)}")
  with np.load(stem + ".npz") as f:
    assert f["images"].dtype == np.uint8 and f["images"].shape == (16, 8, 8, 1)
    np.testing.assert_array_equal(f["images"], np.round(255 * (samples + 1) / 2).astype(np.uint8))
    images = f["images"]
  import matplotlib.image

  from score_sde.plotting import image_grid

  grid = matplotlib.image.imread(stem + ".png")
  # A 4 x 4 grid of 8-pixel images with 1-pixel borders is 37 pixels wide; each pixel becomes a
  # 14 x 14 block, the least integer factor reaching 512 pixels (14 * 37 = 518).
  assert grid.shape[:2] == (14 * 37, 14 * 37)
  small = image_grid(images / 255.0)[..., 0]
  # The PNG holds the very uint8 pixels of the .npz (matplotlib's colormap path lost up to 2).
  np.testing.assert_array_equal(np.round(255 * grid[::14, ::14, 0]), np.round(255 * small))
  np.testing.assert_array_equal(grid[13::14, 13::14], grid[::14, ::14])  # whole blocks


@pytest.mark.parametrize(
  "method",  # one compilation each: two in the fast suite, every method in the slow stage
  [m if m in ("pc", "ddim") else pytest.param(m, marks=pytest.mark.slow) for m in sorted(SAMPLERS)],
)
def test_every_method_runs_through_the_runner_loop(method):
  """Each `sampling.method` builds from the default config and draws finite samples on device."""
  from score_sde.config_defaults import get_default_config
  from score_sde.sampling.dispatch import sampler_from_config
  from score_sde.sde import VPSDE

  cfg = get_default_config().sampling
  cfg.method, cfg.num_steps = method, (None if method == "ode" else 20)
  sde = VPSDE()
  build = sampler_from_config(cfg, sde)
  # N(0, I) data keeps every VP marginal N(0, I): the exact score is -x (the smallest program).
  score = lambda x, t: -x
  # One device: sharding is the chunked-loop test's subject; here each method's compile counts.
  # Two chunks of equal length (20 steps: 10 + 10): one compiled chunk, not two.
  x, nfe = sample_runner.draw(
    build, score, (16, 2), jax.random.key(0), 2, data_mesh(jax.devices()[:1]), progress=False
  )
  assert x.shape == (16, 2) and np.all(np.isfinite(np.asarray(x))) and nfe >= 20
