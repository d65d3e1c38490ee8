"""Training: sharded = single-device, kill-and-resume = uninterrupted, and clear errors on bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import toy_config
from jax.sharding import NamedSharding, PartitionSpec as P

from score_sde import runner_utils as ru
from score_sde.checkpoint import Checkpointer, IncompatibleCheckpointError
from score_sde.train import train
from score_sde.train_step import (
  data_mesh,
  init_state,
  jit_train_steps,
  make_train_steps,
  shard_batches,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(REPO, "configs", "toy", "vp_eight_gaussians.py")


def tiny_config(**training):
  """The session toy run's config (conftest.py), 40 steps, checkpoints at 20 and 40."""
  steps = {"n_iters": 40, "log_freq": 20, "snapshot_freq": 20, **training}
  return toy_config({f"training.{k}": v for k, v in steps.items()})


def _params_after(devices, config, calls=3):
  sde, net = ru.build_sde(config), ru.build_network(config)
  opt = ru.optimizer_from_config(config)
  mesh = data_mesh(devices)
  step = jit_train_steps(
    make_train_steps(ru.make_loss_fn(config, net, sde), opt, ema_rate=0.9), mesh
  )
  state = init_state(ru.init_params(config, net, jax.random.key(0), (2,)), opt)
  # Replicated on the mesh from the start, as train() makes it: the step's outputs are, and an
  # input placed otherwise would trace and compile the step a second time.
  state = jax.device_put(state, NamedSharding(mesh, P()))
  rng = np.random.default_rng(0)
  for _ in range(calls):  # one step a call: the smallest program
    batches = rng.standard_normal((1, 32, 2)).astype(np.float32)
    state, metrics = step(state, shard_batches(batches, mesh), jax.random.key(1))
  return jax.device_get(state.params), jax.device_get(state.ema_params)


def test_eight_devices_equal_one():
  """Data parallel over 8 (forced host) devices gives the single-device parameters."""
  assert jax.device_count() == 8
  config = tiny_config()
  one = _params_after(jax.devices()[:1], config)
  eight = _params_after(jax.devices(), config)
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_gradient_accumulation_matches_full_batch():
  """Averaging the gradients of 4 micro-batches equals the full-batch gradient (same loss samples)."""
  config = tiny_config()
  net = ru.build_network(config)
  params = ru.init_params(config, net, jax.random.key(0), (2,))
  # A deterministic loss isolates the accumulation arithmetic from the per-micro-batch noise keys.
  loss_fn = lambda k, p, x: (
    jnp.mean(jnp.sum((net.apply({"params": p}, x, jnp.full(x.shape[:1], 5.0)) - x) ** 2, 1)),
    None,
  )
  opt = ru.optimizer_from_config(config)
  x = np.random.default_rng(0).standard_normal((1, 32, 2)).astype(np.float32)
  outs = []
  for micro in (1, 4):
    steps = jax.jit(make_train_steps(loss_fn, opt, ema_rate=0.9, micro_batches=micro))
    state, _ = steps(init_state(params, opt), x, jax.random.key(0))
    outs.append(state.params)
  for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _toy_config(**training):
  """The eight-Gaussians toy config as the CLI runs below train it (one device, 100 steps a call
  in one compiled lax.scan for the MLP): in-process runs share their compiled train step."""
  config = ru.load_config(TOY)
  config.model.update(hidden=32, num_layers=1)
  config.training.update(batch_size=64, n_jitted_steps=100, log_freq=100, sample_at_end=False)
  config.training.update(**training)
  return config


def test_training_reduces_loss_and_checkpoints(tmp_path):
  # Two device calls of 100 steps.
  config = _toy_config(n_iters=200, log_freq=200, snapshot_freq=100)
  # One device: sharding is test_eight_devices_equal_one's subject (and the session's toy run,
  # conftest.py, trains through train() on the 8 forced devices).
  train(config, str(tmp_path), mesh=data_mesh(jax.devices()[:1]))
  assert Checkpointer(str(tmp_path)).all_steps() == [100, 200]
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert len(lines) == 1 and '"step": 200' in lines[0]
  assert os.listdir(tmp_path / "tb")
  # The loss at step 200 is below the loss of the initial (zero-output) network on fresh data.
  from score_sde.data import get_dataset

  sde, net = ru.build_sde(config), ru.build_network(config)
  loss_fn = jax.jit(ru.make_loss_fn(config, net, sde))  # one compile for both evaluations
  x = next(get_dataset(ru.data_spec(config)).batches(512, 0, 9))
  init = float(
    loss_fn(jax.random.key(0), ru.init_params(config, net, jax.random.key(0), (2,)), x)[0]
  )
  state = Checkpointer(str(tmp_path)).restore(ru.abstract_state(config, net, (2,)))
  trained = float(loss_fn(jax.random.key(0), state.params, x)[0])
  assert trained < 0.8 * init


def _cli(workdir, *flags):
  cmd = [
    sys.executable,
    "-m",
    "score_sde.main",
    "--config",
    TOY,
    "--workdir",
    str(workdir),
    "--config.training.sample_at_end=False",
    "--config.model.hidden=32",
    "--config.model.num_layers=1",
    "--config.training.batch_size=64",
    # 100 steps a device call (one compiled lax.scan for the MLP); every run compiles the same
    # program, which the later runs load from the session's compilation cache (conftest.py).
    "--config.training.n_jitted_steps=100",
    "--config.training.log_freq=100",
    *flags,
  ]
  env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu")
  return cmd, env


def _wait_ready(proc):
  """Reads the trainer's stdout until it says its signal handlers are installed."""
  from score_sde.train import READY_MESSAGE

  lines = []
  for line in proc.stdout:
    lines.append(line)
    if READY_MESSAGE in line:
      return lines
  raise AssertionError("trainer exited before it was ready:\n" + "".join(lines))


def _start_unfinishable(workdir):
  """A CLI run (stdout piped) that cannot reach n_iters or a snapshot before it is signalled,
  with sample_at_end on, so that a signal's save and its skipped sampling are visible."""
  cmd, env = _cli(
    workdir,
    "--config.training.n_iters=1000000",
    "--config.training.snapshot_freq=100000",
    "--config.training.sample_at_end=True",
  )
  return subprocess.Popen(
    cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
  )


def _preempt(proc, sig):
  """Signals the trainer once it is ready; returns its whole stdout after it exits."""
  head = _wait_ready(proc)
  proc.send_signal(sig)
  out, _ = proc.communicate(timeout=120)
  return "".join(head) + out


@pytest.mark.slow  # two CLI runs; test_ctrl_c_saves_and_exits_without_sampling is the fast one
def test_sigkill_then_sigterm_resume_equals_uninterrupted(tmp_path):
  """A run killed with SIGKILL, restarted and then preempted with SIGTERM holds, at the step the
  preemption saved, the uninterrupted run's parameters; the preempted run exits cleanly and does
  not sample the half-trained model although sample_at_end is on."""
  workdir = tmp_path / "killed"
  cmd, env = _cli(workdir, "--config.training.n_iters=3000", "--config.training.snapshot_freq=100")
  proc = subprocess.Popen(
    cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO
  )
  ckdir = workdir / "checkpoints"
  # Waits for the explicit signal (a checkpoint at step >= 300), not for a wall-clock deadline.
  while proc.poll() is None:
    if ckdir.exists() and any(p.name.isdigit() and int(p.name) >= 300 for p in ckdir.iterdir()):
      break
    time.sleep(0.05)
  assert proc.poll() is None, "training finished before it could be killed; make the run longer"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = Checkpointer(str(workdir)).latest_step()
  assert killed_at is not None and killed_at < 3000

  # The resumed run is preempted: n_iters and the snapshot interval change neither the batches
  # nor the updates (no lr decay), and it cannot finish before the signal arrives.
  proc = _start_unfinishable(workdir)
  out = _preempt(proc, signal.SIGTERM)
  assert proc.returncode == 0, out
  assert f"resumed from step {killed_at}" in out
  step = Checkpointer(str(workdir)).latest_step()
  assert step > killed_at and f"SIGTERM: saved checkpoint at step {step}" in out
  assert "sample quality" not in out and not list(workdir.glob("samples_*"))

  # The uninterrupted run to that step, in this process on one device as the CLI runs had.
  config = _toy_config(n_iters=step, snapshot_freq=step)
  train(config, str(tmp_path / "full"), mesh=data_mesh(jax.devices()[:1]))
  abstract = ru.abstract_state(config, ru.build_network(config), (2,))
  a = jax.device_get(Checkpointer(str(tmp_path / "full")).restore(abstract))
  b = jax.device_get(Checkpointer(str(workdir)).restore(abstract))
  assert int(a.step) == int(b.step) == step
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_ctrl_c_saves_and_exits_without_sampling(tmp_path):
  """SIGINT (Ctrl-C) writes a checkpoint at the current step and exits cleanly, as SIGTERM does
  (test above); the half-trained model is not sampled although sample_at_end is on."""
  proc = _start_unfinishable(tmp_path)
  out = _preempt(proc, signal.SIGINT)
  assert proc.returncode == 0, out
  step = Checkpointer(str(tmp_path)).latest_step()
  assert step is not None and step > 0 and f"SIGINT: saved checkpoint at step {step}" in out
  assert "sample quality" not in out and not list(tmp_path.glob("samples_*"))
  assert (tmp_path / "run.json").exists()


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
  "section,field,value,kind",
  [
    ("sde", "name", "no_such", "SDE"),
    ("model", "name", "no_such", "model"),
    ("data", "name", "no_such", "dataset"),
    ("optim", "optimizer", "no_such", "optimizer"),
    ("training", "loss", "no_such", "loss"),
    ("training", "compute_dtype", "no_such", "compute dtype"),
  ],
)
def test_unknown_names_fail_before_compute(section, field, value, kind, tmp_path):
  config = tiny_config()
  setattr(getattr(config, section), field, value)
  with pytest.raises(ValueError, match=rf"unknown {kind} '{value}'; choose from \["):
    train(config, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def test_batch_not_divisible_by_devices(tmp_path):
  with pytest.raises(ValueError, match="batch_size=36 is not divisible by the 8 devices"):
    train(tiny_config(batch_size=36), str(tmp_path))


def test_wrong_type_fields():
  """Wrong types fail at assignment (ConfigDict), or in validation when a section was replaced."""
  import ml_collections

  config = tiny_config()
  with pytest.raises(TypeError):
    config.training.batch_size = "big"
  fields = config.training.to_dict()
  fields["batch_size"] = "32"
  config.training = ml_collections.ConfigDict(fields)
  with pytest.raises(TypeError, match=r"config.training.batch_size must be int, got '32' \(str\)"):
    ru.validate_config(config, 1)


def test_unknown_network_hyperparameter():
  config = tiny_config()
  config.model.widht = 3
  with pytest.raises(ValueError, match=r"model 'mlp' has no hyperparameters \['widht'\]"):
    ru.validate_config(config, 1)


def test_cli_wrong_type_is_one_line(tmp_path):
  cmd, env = _cli(tmp_path, "--config.training.batch_size=abc")
  out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
  assert out.returncode != 0
  assert "batch_size" in out.stderr and "Traceback" not in out.stderr


def test_incompatible_checkpoint(toy_run):
  config = toy_run.config({"training.n_iters": 60, "model.hidden": 64})
  with pytest.raises(IncompatibleCheckpointError, match="incompatible model.*hidden"):
    train(config, toy_run.workdir)


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
  train(tiny_config(n_iters=20), str(tmp_path))
  ck = tmp_path / "checkpoints"
  snapshot = {p: p.read_bytes() for p in ck.rglob("*") if p.is_file()}
  config = tiny_config(n_iters=100)
  config.optim.lr = 1e30
  with pytest.raises(
    FloatingPointError,
    match=r"training stopped at step \d+: .*the last good "
    r"checkpoint \(step 20 in .*\) is kept",
  ):
    train(config, str(tmp_path))
  assert Checkpointer(str(tmp_path)).all_steps() == [20]
  assert {p: p.read_bytes() for p in ck.rglob("*") if p.is_file()} == snapshot


def test_infinite_gradient_on_a_fresh_run_stops_and_writes_nothing(tmp_path):
  """lr = 1e10 without clipping: the gradient norm overflows while the loss may stay finite; the
  run stops, says no checkpoint exists, and leaves no checkpoint and no run record behind."""
  config = tiny_config(n_iters=100)
  config.optim.lr, config.optim.grad_clip, config.optim.warmup = 1e10, 0.0, 0
  with pytest.raises(
    FloatingPointError,
    match=r"training stopped at step \d+: (gradient norm|loss|a "
    r"parameter).*no checkpoint had been written yet",
  ):
    train(config, str(tmp_path))
  assert Checkpointer(str(tmp_path)).all_steps() == []
  assert not (tmp_path / "run.json").exists()


def test_keep_checkpoints_zero_is_refused(tmp_path):
  with pytest.raises(ValueError, match="keep_checkpoints must be >= 1"):
    train(tiny_config(keep_checkpoints=0), str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def test_metrics_jsonl_one_record_per_step_across_resume(tmp_path):
  """A resume drops the records written after the checkpoint it resumes from; every line is JSON."""
  import json

  train(tiny_config(n_iters=40, log_freq=10, snapshot_freq=20), str(tmp_path))
  # Pretend the run was killed at step 30, after logging step 30 but before checkpointing it.
  ck = Checkpointer(str(tmp_path))
  ck.manager.delete(40)
  ck.close()
  train(tiny_config(n_iters=40, log_freq=10, snapshot_freq=20), str(tmp_path))
  recs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in recs] == [10, 20, 30, 40]


def test_ema_warmup_closed_form():
  """With params moving by +1 per step, ema_n = d_n ema_{n-1} + (1 - d_n) params_n with
  d_n = min(rate, (1 + n) / (10 + n)); the initialisation's weight prod d_n is ~1e-12 by n = 200
  (0.999^200 = 0.82 without warm-up)."""
  import optax

  from score_sde.train_step import ema_decay

  ones = optax.GradientTransformation(
    lambda p: (), lambda g, s, p=None: (jax.tree.map(jnp.ones_like, g), s)
  )
  loss_fn = lambda k, p, x: (jnp.sum(p["w"]) * 0.0, None)
  params = {"w": jnp.zeros((3,))}
  n = 200
  for warmup in (True, False):
    steps = jax.jit(
      make_train_steps(loss_fn, ones, ema_rate=0.999, ema_warmup=warmup, unroll=False)
    )
    state, _ = steps(init_state(params, ones), np.zeros((n, 1, 1), np.float32), jax.random.key(0))
    ema, weight = 0.0, 1.0
    for k in range(1, n + 1):
      d = min(0.999, (1 + k) / (10 + k)) if warmup else 0.999
      ema, weight = d * ema + (1 - d) * k, weight * d
    np.testing.assert_allclose(np.asarray(state.ema_params["w"]), ema, rtol=1e-4)
    np.testing.assert_allclose(float(ema_decay(n, 0.999, warmup)), d, rtol=1e-6)
    assert (weight < 1e-10) if warmup else (weight > 0.8)


def test_learning_rate_warmup_stable_decay():
  """Adam on a constant gradient g = 1 moves by exactly lr(k) a step (m_hat / sqrt(v_hat) = 1,
  up to float32 rounding of the bias corrections), so the updates read off lr(k) = lr min(k / warmup, 1, (total - k) / decay):
  0 -> lr over the warm-up, lr, then linearly to 0 at the last step."""
  from score_sde.train_step import make_optimizer

  lr, warmup, total = 0.5, 10, 50
  # A decay longer than the steps after the warm-up starts right after it.
  for decay_steps, decay in ((20, 20), (1000, total - warmup)):
    opt = make_optimizer(
      "adam", lr=lr, warmup=warmup, grad_clip=0.0, decay_steps=decay_steps, total_steps=total
    )
    params = jnp.zeros(())
    state = opt.init(params)
    got = []
    for _ in range(total):
      update, state = opt.update(jnp.ones(()), state, params)
      got.append(-float(update))
    k = np.arange(total)
    want = lr * np.minimum(np.minimum(k / warmup, 1.0), (total - k) / decay)
    np.testing.assert_allclose(got, want, rtol=3e-5, atol=1e-12)


def test_a_run_recorded_before_a_model_field_existed_still_loads(tmp_path):
  # run.json of an earlier version: no preconditioning / sigma_data fields. Their defaults keep
  # that version's model, so it resumes and samples; any other value is a different model.
  from score_sde.checkpoint import check_run_record

  record = ru.run_record(tiny_config(), (2,))
  old = json.loads(json.dumps(record))
  for field in ("preconditioning", "sigma_data"):
    del old["model"][field]
  (tmp_path / "run.json").write_text(json.dumps(old))
  check_run_record(str(tmp_path), record, write=False)
  edm = tiny_config()
  edm.model.preconditioning = "edm"
  with pytest.raises(IncompatibleCheckpointError, match="preconditioning"):
    check_run_record(str(tmp_path), ru.run_record(edm, (2,)), write=False)


def test_a_network_field_newly_set_to_its_default_still_loads(tmp_path):
  # A small U-Net run recorded before its config set `dropout` (a field of the network, not of
  # config.model's defaults): the network's own default keeps that model; 0.1 is another model.
  from score_sde.checkpoint import check_run_record

  config = tiny_config()
  config.model.name = "small_unet"
  config.model.nf = 8
  (tmp_path / "run.json").write_text(json.dumps(ru.run_record(config, (8, 8, 1))))
  config.model.dropout = 0.0
  check_run_record(str(tmp_path), ru.run_record(config, (8, 8, 1)), write=False)
  config.model.dropout = 0.1
  with pytest.raises(IncompatibleCheckpointError, match="dropout"):
    check_run_record(str(tmp_path), ru.run_record(config, (8, 8, 1)), write=False)
