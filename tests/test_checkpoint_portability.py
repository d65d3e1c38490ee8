"""A checkpoint written on one number of devices loads on another (train on N, sample on M)."""

import os
import subprocess
import sys

import jax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOAD = """
import jax, numpy as np
from score_sde import runner_utils as ru
c = ru.load_config({config!r})
for path, value in {overrides!r}.items():
  section, field = path.split(".")
  setattr(c[section], field, value)
score_fn, sde, shape, step = ru.load_score_fn(c, {workdir!r})
out = np.asarray(score_fn(np.ones((4, 2), np.float32), np.full((4,), 0.5, np.float32)))
assert step == 20 and out.shape == (4, 2) and np.isfinite(out).all()
print("restored on", jax.device_count(), "devices")
"""


def test_checkpoint_from_eight_devices_restores_on_one(toy_run):
  """The session's toy run was trained in this process on its 8 forced devices (conftest.py)."""
  assert jax.device_count() == 8
  code = LOAD.format(
    config=os.path.join(REPO, "configs", "toy", "vp_eight_gaussians.py"),
    overrides=toy_run.overrides,
    workdir=toy_run.workdir,
  )
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  load = subprocess.run(
    [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True
  )
  assert load.returncode == 0, load.stderr[-2000:]
  assert "restored on 1 devices" in load.stdout
