"""A checkpoint written on one number of devices loads on another (train on N, sample on M)."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "toy", "vp_eight_gaussians.py")
TRAIN = """
from score_sde import runner_utils as ru
from score_sde.train import train
c = ru.load_config({config!r})
c.training.update(n_iters=10, n_jitted_steps=5, log_freq=5, snapshot_freq=5, batch_size=32, sample_at_end=False)
train(c, {workdir!r})
"""
LOAD = """
import jax, numpy as np
from score_sde import runner_utils as ru
score_fn, sde, shape, step = ru.load_score_fn(ru.load_config({config!r}), {workdir!r})
out = np.asarray(score_fn(np.ones((4, 2), np.float32), np.full((4,), 0.5, np.float32)))
assert step == 10 and out.shape == (4, 2) and np.isfinite(out).all()
print("restored on", jax.device_count(), "devices")
"""


def _python(code, devices):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)


def test_checkpoint_from_eight_devices_restores_on_one(tmp_path):
  train = _python(TRAIN.format(config=CONFIG, workdir=str(tmp_path)), 8)
  assert train.returncode == 0, train.stderr[-2000:]
  load = _python(LOAD.format(config=CONFIG, workdir=str(tmp_path)), 1)
  assert load.returncode == 0, load.stderr[-2000:]
  assert "restored on 1 devices" in load.stdout
