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
  return jnp.sum(
    -0.5 * jnp.log(2 * jnp.pi * s**2) - 0.5 * ((y - m) / s) ** 2, axis=tuple(range(1, y.ndim))
  )


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("num_levels", [256, 17])
def test_uniform_density_is_log2_levels(centered, num_levels):
  """A density uniform on the data range gives each of the L levels mass 1/L: exactly log2 L
  bits/dim (8 for 8-bit images), whatever the dequantization draw."""
  a, b = bpd.data_scale(centered)
  d = 12
  levels = jax.random.randint(jax.random.key(1), (3, d), 0, num_levels)
  u = bpd.dequantize(jax.random.key(2), levels, num_levels=num_levels)
  assert float(u.min()) >= 0 and float(u.max()) < 1  # the L cells tile [0, 1)
  logp_y = jnp.full((3,), -d * math.log(a))  # uniform on [b, a + b]^D has density a^-D
  np.testing.assert_allclose(
    np.asarray(bpd.bits_per_dim(logp_y, d, centered, num_levels)), math.log2(num_levels), rtol=1e-6
  )
  assert bpd.release_offset(centered) == 8.0 - math.log2(a)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("num_levels", [256, 17])
def test_gaussian_bits_per_dim_matches_hand_calculation(x64, centered, num_levels):
  """E_U[bpd] under N(m, s^2) per dimension, closed form, vs the average over many draws."""
  a, b = bpd.data_scale(centered)
  pixels = jnp.array([[0, 37, 128, 200, 255]]) * (num_levels - 1) // 255
  d = pixels.shape[1]
  m, s = 0.3 * a + b, 0.2 * a  # the density in model space y = a u + b
  draws = 4000
  keys = jax.random.split(jax.random.key(0), draws)
  ys = jax.vmap(
    lambda k: bpd.to_model_space(bpd.dequantize(k, pixels, jnp.float64, num_levels), centered)
  )(keys)
  logp = jax.vmap(lambda y: _gauss_logp(y, m, s))(ys)  # [J, 1]
  res = bpd.combine_draws(logp, d, centered, num_levels)
  # Hand calculation: y is uniform on [lo, hi] = a [k, k + 1] / L + b, so
  # E[(y - m)^2] = ((hi - m)^3 - (lo - m)^3) / (3 (hi - lo)), and per dimension
  # E[bpd] = (1/2 log(2 pi s^2) + E[(y - m)^2] / (2 s^2) - log a + log L) / ln 2.
  k = np.asarray(pixels[0], np.float64)
  lo, hi = a * k / num_levels + b, a * (k + 1) / num_levels + b
  sq = ((hi - m) ** 3 - (lo - m) ** 3) / (3 * (hi - lo))
  want = np.mean(
    (0.5 * np.log(2 * np.pi * s**2) + sq / (2 * s**2) - np.log(a) + np.log(num_levels)) / np.log(2)
  )
  per_draw = bpd.bits_per_dim(logp[:, 0], d, centered, num_levels)
  se = float(jnp.std(per_draw)) / math.sqrt(draws)
  assert abs(float(res["bpd"][0]) - want) < 4 * se + 1e-9, (float(res["bpd"][0]), want, se)
  # The exact discrete probability of each level, P = Phi(hi) - Phi(lo): -log2 P / D is below
  # the dequantization bound (Jensen), and the importance-weighted bound (never above the
  # averaged one, for the same draws) approaches it with many draws.
  exact = -np.sum(np.log(stats.norm.cdf(hi, m, s) - stats.norm.cdf(lo, m, s))) / (d * np.log(2))
  assert exact < want - 1e-5
  assert float(res["bpd_iw"][0]) <= float(res["bpd"][0])
  # Its Monte Carlo error: the log of a mean of J weights w_j, std error std(w) / (mean(w) sqrt J).
  w = np.exp(np.asarray(logp[:, 0]) - float(logp.max()))
  se_iw = w.std() / (w.mean() * math.sqrt(draws)) / (d * math.log(2))
  assert abs(float(res["bpd_iw"][0]) - exact) < 4 * se_iw + 1e-4, (res["bpd_iw"], exact, se_iw)


def test_categorical_baseline_is_the_entropy_of_a_known_categorical():
  """Data whose every pixel takes the levels with exact frequencies p (counts N p_k): the
  maximum-likelihood baseline (alpha = 0) scores the same data at the entropy H(p) exactly, and
  fresh data drawn from p near H(p) (n = 20000 pixels: standard error ~0.012 bits)."""
  p = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])  # H = 1.875 bits
  entropy = -np.sum(p * np.log2(p))
  rng = np.random.default_rng(0)
  n, d = 160, 4
  column = np.repeat(np.arange(5), (p * n).astype(int))  # exact counts
  train = np.stack([rng.permutation(column) for _ in range(d)], 1)  # [N, D]
  np.testing.assert_allclose(
    bpd.categorical_baseline(train, train, 5, alpha=0.0).mean(), entropy, rtol=1e-12
  )
  test = rng.choice(5, size=(5000, d), p=p)
  per_example = bpd.categorical_baseline(train, test, 5, alpha=0.0)
  assert abs(per_example.mean() - entropy) < 4 * per_example.std() / math.sqrt(len(test))
  # Add-1/2 counts keep an unseen level finite (log2 of a positive probability).
  unseen = bpd.categorical_baseline(train, np.full((1, d), 4), 6)
  assert np.isfinite(unseen).all()
  assert np.isinf(bpd.categorical_baseline(train, np.full((1, d), 5), 6, alpha=0.0)).all()


def test_digits_levels_round_trip():
  """The digits have 17 levels at 8 x 8; the runner recovers them from the k / 255 batches."""
  from score_sde.bpd_runner import _levels
  from score_sde.data import DataSpec, get_dataset

  ds = get_dataset(DataSpec(name="digits", image_size=8), "test")
  assert ds.num_levels == 17
  from sklearn.datasets import load_digits

  batch = next(ds.epoch(4096))
  levels = _levels(batch, 17)
  assert levels.min() == 0 and levels.max() == 16
  order = np.random.default_rng(0).permutation(1797)
  np.testing.assert_array_equal(levels[..., 0], load_digits().images[order[int(0.9 * 1797) :]])


def test_without_dequantization_bits_per_dim_can_be_negative():
  """A density concentrated at the grid points k / 255 scores them far below 0 bits/dim."""
  pixels = jnp.array([[3, 100, 250]])
  y = pixels / 255.0
  logp = _gauss_logp(y, y, 1e-4)  # narrow bumps centred on the discrete data
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
  """The session's toy run (20 steps) with its 10,000-point test split in 5 batches. Loose ODE
  tolerances: the resumed result equals the uninterrupted one exactly at any tolerance."""
  config = toy_run.config({"eval.batch_size": 2000, "eval.rtol": 1e-2, "eval.atol": 1e-2})
  return config, toy_run.workdir


@pytest.mark.slow  # resumable rounds are also test_eval_runner's killed-evaluation test (fast)
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
    f.write('{"batch": 2, "values": [1.0, ')  # a line cut short by a kill
  resumed = bpd_runner.run(config, copy)
  assert "resuming" in capsys.readouterr().out
  assert resumed["complete"] and resumed["num_batches"] == 5
  assert resumed["mean"] == full["mean"] and resumed["stderr"] == full["stderr"]
  with open(os.path.join(copy, "bpd_20_test.json")) as f:
    assert json.load(f)["mean"] == full["mean"]
  assert np.isfinite(full["mean"]) and full["stderr"] > 0

  config.eval.rtol = 1e-3  # other settings must not silently mix with the saved batches
  try:
    with pytest.raises(ValueError, match="other settings"):
      bpd_runner.run(config, copy)
  finally:
    config.eval.rtol = 1e-2


@pytest.mark.slow
def test_runner_on_images_reports_dequantized_bits_per_dim(tmp_path, capsys):
  """Digits (8-bit images): the image path, J = 2 dequantization draws, the saved summary."""
  from score_sde import bpd_runner, runner_utils as ru
  from score_sde.train import train

  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = ru.load_config(os.path.join(repo, "configs", "digits", "vp_small_unet.py"))
  config.data.image_size = 8
  config.model.nf = 8
  config.model.ch_mult = (1, 2)  # two levels suffice for the image path (and compile faster)
  config.training.batch_size = 16
  config.training.n_iters = 2
  config.training.n_jitted_steps = 1
  config.training.log_freq = 1
  config.training.snapshot_freq = 2
  config.training.sample_at_end = False
  config.eval.batch_size = 96  # 180 test images: a sharded batch of 96 and one of 84
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
  assert res["mean_iw"] <= res["mean"] + 1e-9  # log-mean-exp >= mean of logs, per image
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
  cmd = [
    sys.executable,
    "-m",
    "score_sde.main",
    "--config",
    os.path.join(repo, "configs", "toy", "vp_eight_gaussians.py"),
    "--workdir",
    copy,
    "--mode",
    "eval",
    *(f"--config.{k}={v}" for k, v in toy_run.overrides.items()),
    "--config.eval.enable_sampling=False",
    "--config.eval.enable_bpd=True",
    "--config.eval.batch_size=5000",
    "--config.eval.rtol=1e-3",
    "--config.eval.atol=1e-3",
  ]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")  # as trained
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "nats/dim on the test split at step 20" in proc.stdout
  with open(os.path.join(copy, "bpd_20_test.json")) as f:
    assert json.load(f)["num_examples"] == 10_000
