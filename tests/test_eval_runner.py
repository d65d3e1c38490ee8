"""--mode eval: checkpoint ranges, the eval loss, sampling in resumable rounds, quality metrics."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from score_sde import eval_runner, sample_runner

# The toy run's sampler, made cheap: 10 Euler-Maruyama steps; 150 samples in rounds of 60 (the
# third round drawn whole and cut to 30; 60 is no multiple of the 8 test devices, so one device
# and a quicker compilation).
FAST = {
  "sampling.num_steps": 10,
  "sampling.progress_chunks": 1,
  "eval.batch_size": 60,
  "eval.num_samples": 150,
  "eval.enable_loss": False,
}


def _copy(toy_run, tmp_path, name):
  workdir = str(tmp_path / name)
  shutil.copytree(toy_run.workdir, workdir)
  return workdir


def _rounds(workdir, config, step=20):
  folder = os.path.join(
    workdir, "eval", f"ckpt_{step}", f"samples_{sample_runner.run_name(config.sampling)}"
  )
  out = {}
  for name in sorted(os.listdir(folder)):
    if name.startswith("round_"):
      with np.load(os.path.join(folder, name)) as f:
        out[name] = f["samples"]
  return out


def _metrics(workdir, config, step=20):
  path = os.path.join(
    workdir, "eval", f"ckpt_{step}", f"metrics_{sample_runner.run_name(config.sampling)}.json"
  )
  with open(path) as f:
    return json.load(f)


def test_checkpoints_to_evaluate():
  assert eval_runner.checkpoints_to_evaluate([10, 20, 30], None, None, None) == [None]
  assert eval_runner.checkpoints_to_evaluate([10, 20, 30], None, None, 20) == [20]
  assert eval_runner.checkpoints_to_evaluate([30, 10, 20], 15, None, None) == [20, 30]
  assert eval_runner.checkpoints_to_evaluate([10, 20, 30], None, 20, None) == [10, 20]
  with pytest.raises(ValueError, match="no checkpoint"):
    eval_runner.checkpoints_to_evaluate([10, 20, 30], 21, 29, None)


def test_round_keys_depend_only_on_seed_step_and_index():
  """Round i's key is fold_in(fold_in(key(seed), step), i): the same whether rounds before it
  were drawn in this process or not, different across i, steps and seeds."""
  data = lambda k: np.asarray(jax.random.key_data(k))
  keys = [sample_runner.round_key(42, 20, i) for i in range(3)]
  np.testing.assert_array_equal(data(keys[2]), data(sample_runner.round_key(42, 20, 2)))
  assert len({data(k).tobytes() for k in keys}) == 3
  assert data(sample_runner.round_key(42, 10, 2)).tobytes() != data(keys[2]).tobytes()
  assert data(sample_runner.round_key(43, 20, 2)).tobytes() != data(keys[2]).tobytes()
  assert sample_runner.num_rounds(50_000, 1024) == 49 and sample_runner.num_rounds(2048, 1024) == 2


def test_killed_evaluation_resumes_to_the_uninterrupted_metrics(toy_run, tmp_path):
  """A run stopped after 1 round (as if killed), then resumed (asking for fewer samples first:
  rounds do not depend on how many are asked for), ends with the rounds and the metrics JSON of
  one uninterrupted run, and the resumed runs draw only the rounds not yet on disk."""
  config = toy_run.config(FAST)
  whole = _copy(toy_run, tmp_path, "whole")
  [full] = eval_runner.run(config, whole)
  assert full["complete"] and full["rounds_drawn"] == 3 and full["num_samples"] == 150
  killed = _copy(toy_run, tmp_path, "killed")
  [part] = eval_runner.run(config, killed, max_rounds=1)
  assert not part["complete"] and part["rounds_drawn"] == 1
  assert not os.path.exists(
    os.path.join(killed, "eval", "ckpt_20", f"metrics_{full['sampler']}.json")
  )
  [two] = eval_runner.run(toy_run.config({**FAST, "eval.num_samples": 120}), killed)
  assert two["complete"] and two["rounds_drawn"] == 1 and two["num_samples"] == 120
  [resumed] = eval_runner.run(config, killed)
  assert resumed["rounds_drawn"] == 1
  a, b = _rounds(whole, config), _rounds(killed, config)
  assert sorted(a) == sorted(b) == ["round_00000.npz", "round_00001.npz", "round_00002.npz"]
  for name in a:
    np.testing.assert_array_equal(a[name], b[name])
  ma, mb = _metrics(whole, config), _metrics(killed, config)
  for m in (ma, mb):
    del m["rounds_drawn"]
  assert ma == mb
  # The toy metrics are there and sane for a 20-step model: finite NLL, a fraction in [0, 1].
  assert np.isfinite(ma["nll"]) and 0 <= ma["off_mode_fraction"] <= 1
  assert ma["sliced_w2"] > 0 and ma["nfe"] == 10


def test_rounds_from_other_settings_are_refused(toy_run, tmp_path):
  workdir = _copy(toy_run, tmp_path, "w")
  eval_runner.run(toy_run.config(FAST), workdir, max_rounds=1)
  with pytest.raises(ValueError, match="other settings"):
    eval_runner.run(toy_run.config({**FAST, "eval.batch_size": 30}), workdir, max_rounds=1)


def test_checkpoint_range_and_eval_loss(toy_run, tmp_path):
  """begin_ckpt..end_ckpt covers both of the toy run's checkpoints; the loss is the mean of the
  per-example objective over the 10,000 test examples."""
  workdir = _copy(toy_run, tmp_path, "w")
  config = toy_run.config(
    {
      **FAST,
      "eval.enable_sampling": False,
      "eval.enable_loss": True,
      "eval.begin_ckpt": 0,
      "eval.batch_size": 5000,
    }
  )
  results = eval_runner.run(config, workdir)
  assert [r["step"] for r in results] == [10, 20]
  for r in results:
    assert r["loss_num_examples"] == 10_000 and np.isfinite(r["loss"]) and r["loss"] > 0
    with open(os.path.join(workdir, "eval", f"ckpt_{r['step']}", "metrics.json")) as f:
      assert json.load(f)["loss"] == r["loss"]


def test_toy_metrics_see_noise():
  """Exact samples score near the real floor; uniform noise over the plane is mostly off-mode."""
  from score_sde.evaluate import quality_metrics
  from score_sde.runner_utils import load_config

  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = load_config(os.path.join(repo, "configs", "toy", "vp_eight_gaussians.py"))
  from score_sde.data.toy import sample_toy

  exact = sample_toy("eight_gaussians", np.random.default_rng(5), 2000).astype(np.float32)
  q, notes = quality_metrics(config, exact)
  assert not notes
  # 2000 exact samples: off-mode probability exp(-8) = 3e-4 each, so a few at most.
  assert q["off_mode_fraction"] < 0.005 and abs(q["nll"] - q["nll_real"]) < 0.1
  noise = np.random.default_rng(6).uniform(-2, 2, (2000, 2)).astype(np.float32)
  qn, _ = quality_metrics(config, noise)
  assert qn["off_mode_fraction"] > 0.5 and qn["nll"] > q["nll"] + 5


def test_digits_held_out_digits_as_samples_score_far_below_noise():
  """Held-out real digits given as "samples" (centred, as a centred model emits them): a digits
  FD far below that of uniform noise, full coverage (the classifier trains once, ~30 s)."""
  from score_sde import digits_metric as dm
  from score_sde.evaluate import quality_line, quality_metrics
  from score_sde.runner_utils import load_config

  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = load_config(os.path.join(repo, "configs", "digits", "vp_small_unet.py"))
  config.data.centered = True
  # At 8 x 8 and at the config's 16 x 16 (where both sides of the FD are shrunk to 8 x 8, so the
  # held-out bar is that of held-out digits taken the same way, not the 8 x 8 one).
  for size in (8, 16):
    config.data.image_size = size
    held_out = 2.0 * dm.digits_splits(size)["test_x"] - 1.0
    q, notes = quality_metrics(config, held_out)
    assert not notes
    assert q["digits_fd"] == pytest.approx(q["digits_fd_held_out"], rel=1e-6)
    assert q["digits_fd"] < 0.1 * q["digits_fd_noise"]
    # 180 images, ~18 a class: the class fractions fluctuate by ~0.2 / sqrt(18) each.
    assert q["coverage"] > 0.8
    assert "digits FD" in quality_line(q)
  # The bar is at the samples' count (FD is biased upward at small n): 64 held-out digits as
  # samples score exactly the bar, which is far above the bar at 180.
  config.data.image_size = 8
  held_out = 2.0 * dm.digits_splits(8)["test_x"] - 1.0
  q64 = quality_metrics(config, held_out[:64])[0]
  assert q64["digits_fd_held_out_n"] == q64["digits_fd_n"] == 64
  assert q64["digits_fd"] == pytest.approx(q64["digits_fd_held_out"], rel=1e-6)
  # More samples than held-out digits: also scored on their first 180, against the bar at 180.
  more = np.concatenate([held_out, held_out[:20]])
  q200 = quality_metrics(config, more)[0]
  assert (q200["digits_fd_n"], q200["digits_fd_held_out_n"]) == (200, 180)
  assert q200["digits_fd_at_held_out_n"] == pytest.approx(q200["digits_fd_held_out"], rel=1e-6)
  assert "at n = 180" in quality_line(q200)
  assert q64["digits_fd_held_out"] > 2.0 * q200["digits_fd_held_out"]  # 25.8 against 7.82


@pytest.mark.slow
def test_cli_eval_writes_metrics(toy_run, tmp_path):
  workdir = _copy(toy_run, tmp_path, "cli")
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  overrides = {
    **toy_run.overrides,
    **FAST,
    "eval.enable_loss": True,
    "eval.batch_size": 5000,
    "eval.num_samples": 5000,
  }
  cmd = [
    sys.executable,
    "-m",
    "score_sde.main",
    "--config",
    os.path.join(repo, "configs", "toy", "vp_eight_gaussians.py"),
    "--workdir",
    workdir,
    "--mode",
    "eval",
    *(f"--config.{k}={v}" for k, v in overrides.items()),
  ]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "loss on the test split" in proc.stdout and "off-mode fraction" in proc.stdout
  config = toy_run.config(FAST)
  assert _metrics(workdir, config)["num_samples"] == 5000
