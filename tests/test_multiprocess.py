"""Two processes on localhost with jax.distributed on CPU train one model sharded across them; one
process is SIGTERMed, both save the same step, and the resumed run ends with the parameters of a
single-process run over the same global batches."""

import os
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from score_sde import runner_utils as ru
from score_sde.checkpoint import Checkpointer
from score_sde.data import get_dataset
from score_sde.train import READY_MESSAGE
from score_sde.train_step import data_mesh, jit_train_steps, make_train_steps, shard_batches

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "toy", "vp_eight_gaussians.py")
FLAGS = [
  "--config.model.hidden=16",
  "--config.model.num_layers=1",
  "--config.training.batch_size=32",
  "--config.training.n_jitted_steps=5",
  "--config.training.log_freq=5",
  "--config.training.snapshot_freq=100000",
  "--config.training.sample_at_end=False",
  "--config.distributed=True",
]


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _start(workdir, n_iters):
  port = _free_port()
  procs = []
  for i in range(2):
    env = dict(
      os.environ,
      XLA_FLAGS="--xla_force_host_platform_device_count=1",
      JAX_PLATFORMS="cpu",
      JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
      JAX_NUM_PROCESSES="2",
      JAX_PROCESS_ID=str(i),
    )
    cmd = [
      sys.executable,
      "-m",
      "score_sde.main",
      "--config",
      CONFIG,
      "--workdir",
      str(workdir),
      f"--config.training.n_iters={n_iters}",
      *FLAGS,
    ]
    procs.append(
      subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
      )
    )
  return procs


def _wait_ready(proc):
  lines = []
  for line in proc.stdout:
    lines.append(line)
    if READY_MESSAGE in line:
      return lines
  raise AssertionError("process exited before it was ready:\n" + "".join(lines))


def _finish(procs, heads=((), ())):
  outs = []
  for p, head in zip(procs, heads):
    out, _ = p.communicate(timeout=300)
    outs.append("".join(head) + out)
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


def _single_process_params(steps):
  """One process, two devices: the global batch of step k is process 0's then process 1's."""
  config = ru.load_config(CONFIG)
  config.model.hidden, config.model.num_layers = 16, 1
  config.training.update(batch_size=32, n_jitted_steps=5)
  bundle = ru.build(config, num_devices=2)
  mesh = data_mesh(jax.devices()[:2])
  init_key, train_key = jax.random.split(jax.random.key(config.seed))
  state = bundle.init_state(init_key)
  fn = jit_train_steps(
    make_train_steps(
      bundle.loss_fn,
      bundle.optimizer,
      ema_rate=bundle.ema_rate,
      ema_warmup=bundle.ema_warmup,
      unroll=bundle.unroll_train,
    ),
    mesh,
  )
  data = get_dataset(ru.data_spec(config), "train")
  its = [data.batches(32, 0, config.seed, i, 2) for i in range(2)]
  for _ in range(steps // 5):
    b = np.stack([np.concatenate([next(it) for it in its]) for _ in range(5)])
    state, _ = fn(state, shard_batches(b, mesh), train_key)
  return jax.device_get(state), bundle


@pytest.mark.slow
def test_two_processes_sigterm_resume_equal_single_process(tmp_path):
  procs = _start(tmp_path, 100000)
  heads = [_wait_ready(p) for p in procs]
  procs[1].send_signal(signal.SIGTERM)  # the non-main process: the stop must still be agreed
  outs = _finish(procs, heads)
  saved = Checkpointer(str(tmp_path)).latest_step()
  assert saved is not None and saved % 5 == 0
  # Process 0 (which alone prints) learned of the other's SIGTERM and saved the agreed step.
  assert f"SIGTERM (another process): saved checkpoint at step {saved}" in outs[0]

  final = saved + 10
  outs = _finish(_start(tmp_path, final))
  assert f"resumed from step {saved}" in outs[0]
  ref, bundle = _single_process_params(final)
  got = Checkpointer(str(tmp_path)).restore(bundle.abstract_state(), final)
  assert int(got.step) == final
  for a, b in zip(jax.tree.leaves(jax.device_get(got)), jax.tree.leaves(ref)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
