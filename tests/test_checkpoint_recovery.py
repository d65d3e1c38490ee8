"""A corrupt newest checkpoint is detected on restore, moved aside (not deleted) with a one-line
message, and training resumes from the previous good one."""

import os
import shutil

import jax
import numpy as np
import pytest
from conftest import REPO, toy_config

from score_sde import runner_utils as ru
from score_sde.checkpoint import Checkpointer
from score_sde.train import train


def _config(n_iters=40):
  """The session toy run's config (conftest.py), checkpoints every 20 steps."""
  return toy_config({"training.n_iters": n_iters, "training.snapshot_freq": 20})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("trained")
  train(_config(), str(workdir))
  assert Checkpointer(str(workdir)).all_steps() == [20, 40]
  return workdir


def _data_files(step_dir):
  """Every OCDBT data file ('d/' directories). All of them: which file holds which array (and
  which one a restore reads) varies from save to save, and a file that is not read leaves the
  checkpoint intact."""
  return [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]


def _truncate(step_dir):
  for f in _data_files(step_dir):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _delete_metadata(step_dir):
  (step_dir / "default" / "_METADATA").unlink()


def _garbage_manifest(step_dir):
  for m in step_dir.rglob("manifest.ocdbt"):
    m.write_bytes(b"this is not a manifest" * 10)


def _empty(step_dir):
  for p in list(step_dir.iterdir()):
    shutil.rmtree(p) if p.is_dir() else p.unlink()


def _random_bytes(step_dir):
  for f in _data_files(step_dir):
    data = bytearray(f.read_bytes())
    start = len(data) // 4
    n = min(4096, len(data) // 2)
    data[start : start + n] = np.random.default_rng(0).integers(0, 256, n, np.uint8).tobytes()
    f.write_bytes(bytes(data))


CORRUPTIONS = {
  "truncated_file": _truncate,
  "deleted_metadata": _delete_metadata,
  "garbage_manifest": _garbage_manifest,
  "emptied_step_dir": _empty,
  "random_bytes_in_data": _random_bytes,
}


def _copy(trained, tmp_path, kind):
  workdir = tmp_path / "w"
  shutil.copytree(trained, workdir)
  CORRUPTIONS[kind](workdir / "checkpoints" / "40")
  return workdir


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_newest_checkpoint_falls_back(kind, trained, tmp_path):
  workdir = _copy(trained, tmp_path, kind)
  config = _config()
  bundle = ru.build(config)
  messages = []
  ckpt = Checkpointer(str(workdir))
  state, step = ckpt.restore_latest(bundle.abstract_state(), log=messages.append)
  ckpt.close()
  assert step == 20 and int(state.step) == 20
  good = Checkpointer(str(trained)).restore(bundle.abstract_state(), 20)
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(good)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Moved aside (named, not deleted) with one line saying so.
  assert len(messages) == 1 and "\n" not in messages[0]
  assert (
    messages[0].startswith("checkpoint 40 is corrupt") and "resuming from step 20" in messages[0]
  )
  assert (workdir / "checkpoints_corrupt" / "40").is_dir()
  assert not (workdir / "checkpoints" / "40").exists()


def test_training_resumes_past_a_corrupt_checkpoint_to_the_same_parameters(
  trained, tmp_path, capsys
):
  """Random bytes in the newest checkpoint's data: the rerun resumes from step 20 and ends with the
  parameters of the uninterrupted run (same batches and noise from step 20 on)."""
  workdir = _copy(trained, tmp_path, "random_bytes_in_data")
  train(_config(), str(workdir))
  out = capsys.readouterr().out
  assert "checkpoint 40 is corrupt" in out and "resumed from step 20" in out
  bundle = ru.build(_config())
  a = Checkpointer(str(workdir)).restore(bundle.abstract_state(), 40)
  b = Checkpointer(str(trained)).restore(bundle.abstract_state(), 40)
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_sampling_restores_ema_only_and_falls_back(trained, tmp_path):
  """The sample / eval path reads only the EMA parameters, and also skips a corrupt newest step."""
  workdir = _copy(trained, tmp_path, "truncated_file")
  config = _config()
  bundle = ru.build(config)
  params, step = ru.load_ema_params(config, str(workdir), bundle)
  good = Checkpointer(str(trained)).restore(bundle.abstract_state(), 20).ema_params
  assert step == 20
  assert jax.tree.structure(params) == jax.tree.structure(good)
  for u, v in zip(jax.tree.leaves(params), jax.tree.leaves(good)):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
  assert os.path.isdir(workdir / "checkpoints_corrupt" / "40")


def test_fault_drill_finds_these_corruptions_outside_pytest():
  """experiments/fault_drill.py inflicts this module's CORRUPTIONS; run as a plain script (no
  pytest, so no tests/ folder on the path for `from conftest import ...`) it must still load them."""
  import subprocess
  import sys

  code = (
    "import sys; sys.path.insert(0, 'experiments'); import fault_drill; "
    "print(sorted(fault_drill.load_corruptions()))"
  )
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  out = subprocess.run(
    [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False
  )
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == str(sorted(CORRUPTIONS))
