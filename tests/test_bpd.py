"""Bits/dim against hand calculations, and the bits/dim runner's resume."""
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from score_sde import bpd


def _gauss_logp(y, m, s):
  return jnp.sum(-0.5 * jnp.log(2 * jnp.pi * s ** 2) - 0.5 * ((y - m) / s) ** 2, axis=tuple(range(1, y.ndim)))


@pytest.mark.parametrize("centered", [False, True])
def test_uniform_density_is_eight_bits(centered):
  """A density uniform on the data range gives every one of the 256 levels mass 1/256: 8 bits."""
  a, b = bpd.data_scale(centered)
  d = 12
  logp_y = jnp.full((3,), -d * math.log(a))  # uniform on [b, a + b]^D has density a^-D
  np.testing.assert_allclose(np.asarray(bpd.bits_per_dim(logp_y, d, centered)), 8.0, rtol=1e-6)
  assert bpd.release_offset(centered) == 8.0 - math.log2(a)


@pytest.mark.parametrize("centered", [False, True])
def test_gaussian_bits_per_dim_matches_hand_calculation(x64, centered):
  """E_U[bpd] under N(m, s^2) per dimension, closed form, vs the average over many draws."""
  a, b = bpd.data_scale(centered)
  pixels = jnp.array([[0, 37, 128, 200, 255]])
  d = pixels.shape[1]
  m, s = 0.3 * a + b, 0.2 * a   # the density in model space y = a u + b
  draws = 4000
  keys = jax.random.split(jax.random.key(0), draws)
  ys = jax.vmap(lambda k: bpd.to_model_space(bpd.dequantize(k, pixels, jnp.float64), centered))(keys)
  logp = jax.vmap(lambda y: _gauss_logp(y, m, s))(ys)                       # [J, 1]
  res = bpd.combine_draws(logp, d, centered)
  # Hand calculation: y is uniform on [lo, hi] = a [k, k + 1] / 256 + b, so
  # E[(y - m)^2] = ((hi - m)^3 - (lo - m)^3) / (3 (hi - lo)), and per dimension
  # E[bpd] = (1/2 log(2 pi s^2) + E[(y - m)^2] / (2 s^2) - log a + log 256) / ln 2.
  k = np.asarray(pixels[0], np.float64)
  lo, hi = a * k / 256 + b, a * (k + 1) / 256 + b
  sq = ((hi - m) ** 3 - (lo - m) ** 3) / (3 * (hi - lo))
  want = np.mean((0.5 * np.log(2 * np.pi * s ** 2) + sq / (2 * s ** 2) - np.log(a) + np.log(256)) / np.log(2))
  per_draw = bpd.bits_per_dim(logp[:, 0], d, centered)
  se = float(jnp.std(per_draw)) / math.sqrt(draws)
  assert abs(float(res["bpd"][0]) - want) < 4 * se + 1e-9, (float(res["bpd"][0]), want, se)
  # The exact discrete probability of each level, P = Phi(hi) - Phi(lo): -log2 P / D is below
  # the dequantization bound (Jensen), and the importance-weighted bound (never above the
  # averaged one, for the same draws) approaches it with many draws.
  exact = -np.sum(np.log(stats.norm.cdf(hi, m, s) - stats.norm.cdf(lo, m, s))) / (d * np.log(2))
  assert exact < want - 1e-5
  assert float(res["bpd_iw"][0]) <= float(res["bpd"][0])
  np.testing.assert_allclose(float(res["bpd_iw"][0]), exact, atol=1e-3)


def test_without_dequantization_bits_per_dim_can_be_negative():
  """A density concentrated at the grid points k / 255 scores them far below 0 bits/dim."""
  pixels = jnp.array([[3, 100, 250]])
  y = pixels / 255.0
  logp = _gauss_logp(y, y, 1e-4)          # narrow bumps centred on the discrete data
  assert float(bpd.bits_per_dim(logp, 3, False)[0]) < 0
  # The same density with dequantized inputs pays for the cell it does not cover: above 8 bits.
  u = bpd.dequantize(jax.random.key(0), pixels, jnp.float32)
  assert float(bpd.bits_per_dim(_gauss_logp(u, y, 1e-4), 3, False)[0]) > 8


def test_mean_and_stderr():
  v = np.arange(10.0)
  mean, se = bpd.mean_and_stderr(v)
  assert mean == 4.5 and abs(se - np.std(v, ddof=1) / np.sqrt(10)) < 1e-12


# --- the runner --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bpd_toy(toy_run):
  """The session's toy run (20 steps) with its 10,000-point test split in 5 batches."""
  config = toy_run.config({"eval.batch_size": 2000, "eval.rtol": 1e-3, "eval.atol": 1e-3})
  return config, toy_run.workdir


def test_runner_resumes_to_the_uninterrupted_result(bpd_toy, tmp_path, capsys):
  import shutil

  from score_sde import bpd_runner
  config, workdir = bpd_toy
  copy = str(tmp_path / "run")
  shutil.copytree(workdir, copy)

  full = bpd_runner.run(config, workdir)
  assert full["complete"] and full["num_examples"] == 10_000 and full["units"] == "nats/dim"
  assert "no dequantization" in capsys.readouterr().out

  part = bpd_runner.run(config, copy, max_batches=2)
  assert not part["complete"] and part["num_batches"] == 2
  with open(os.path.join(copy, "bpd_20_test.jsonl"), "a") as f:
    f.write('{"batch": 2, "values": [1.0, ')           # a line cut short by a kill
  resumed = bpd_runner.run(config, copy)
  assert "resuming" in capsys.readouterr().out
  assert resumed["complete"] and resumed["num_batches"] == 5
  assert resumed["mean"] == full["mean"] and resumed["stderr"] == full["stderr"]
  with open(os.path.join(copy, "bpd_20_test.json")) as f:
    assert json.load(f)["mean"] == full["mean"]
  assert np.isfinite(full["mean"]) and full["stderr"] > 0

  config.eval.rtol = 1e-4   # other settings must not silently mix with the saved batches
  try:
    with pytest.raises(ValueError, match="other settings"):
      bpd_runner.run(config, copy)
  finally:
    config.eval.rtol = 1e-3


@pytest.mark.slow
def test_runner_on_images_reports_dequantized_bits_per_dim(tmp_path, capsys):
  """Digits (8-bit images): the image path, J = 2 dequantization draws, the saved summary."""
  from score_sde import bpd_runner, runner_utils as ru
  from score_sde.train import train
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = ru.load_config(os.path.join(repo, "configs", "digits", "vp_small_unet.py"))
  config.data.image_size = 8
  config.model.nf = 8
  config.training.batch_size = 16
  config.training.n_iters = 2
  config.training.n_jitted_steps = 1
  config.training.log_freq = 1
  config.training.snapshot_freq = 2
  config.training.sample_at_end = False
  config.eval.batch_size = 96          # 180 test images: a sharded batch of 96 and one of 84
  config.eval.rtol = 1e-2
  config.eval.atol = 1e-2
  config.eval.num_dequant = 2
  workdir = str(tmp_path)
  train(config, workdir)
  res = bpd_runner.run(config, workdir)
  out = capsys.readouterr().out
  assert "uniform dequantization" in out and "2 draw(s)" in out
  assert res["units"] == "bits/dim" and res["num_examples"] == 180 and res["complete"]
  assert np.isfinite(res["mean"]) and res["mean"] > 0
  assert res["mean_iw"] <= res["mean"] + 1e-9   # log-mean-exp >= mean of logs, per image
  with open(os.path.join(workdir, "bpd_2_test.json")) as f:
    saved = json.load(f)
  assert saved["mean"] == res["mean"] and saved["scaling"] == "y = 2 u + -1"


@pytest.mark.slow
def test_cli_eval_computes_bits_per_dim(toy_run, tmp_path):
  import shutil
  import subprocess
  import sys
  copy = str(tmp_path / "cli")
  shutil.copytree(toy_run.workdir, copy, ignore=shutil.ignore_patterns("bpd_*"))
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  cmd = [sys.executable, "-m", "score_sde.main",
         "--config", os.path.join(repo, "configs", "toy", "vp_eight_gaussians.py"),
         "--workdir", copy, "--mode", "eval", *(f"--config.{k}={v}" for k, v in toy_run.overrides.items()),
         "--config.eval.enable_sampling=False", "--config.eval.enable_bpd=True",
         "--config.eval.batch_size=5000", "--config.eval.rtol=1e-3", "--config.eval.atol=1e-3"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")  # as trained
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "nats/dim on the test split at step 20" in proc.stdout
  with open(os.path.join(copy, "bpd_20_test.json")) as f:
    assert json.load(f)["num_examples"] == 10_000
