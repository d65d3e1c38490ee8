"""The training runner: config -> sharded train loop with logging, checkpoints and resume.

Prints step, loss (running mean since the last line), steps/s and ETA (both measured after the
train step has compiled); writes TensorBoard events (`workdir/tb`) and `workdir/metrics.jsonl`
(one JSON record per logged step, also across resumes; non-finite values as null) and, with
`training.snapshot_sampling`, sample pictures at each checkpoint (score_sde/snapshots.py). Checkpoints
every `training.snapshot_freq` steps (orbax's save interval), at the end, and when the process
receives SIGTERM (preemption) or SIGINT (Ctrl-C; a second Ctrl-C aborts at once). With several
processes the stop is agreed at a step boundary, so every process saves the same step. Restarting
in the same workdir resumes from the latest checkpoint that verifies (see checkpoint.py); batch k
and the noise of step k depend only on (seed, k), so the resumed run reaches the parameters an
uninterrupted run would.

Training stops with `TrainingDivergedError` (a FloatingPointError; the CLI exits non-zero) when
the loss, the gradient norm or any parameter is not finite; nothing of the diverged state is
saved and the last good checkpoint is kept.
"""

import json
import math
import os
import signal
import time
from typing import Optional

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from score_sde import runner_utils as ru
from score_sde.checkpoint import Checkpointer, check_run_record
from score_sde.data import get_dataset
from score_sde.train_step import data_mesh, jit_train_steps, make_train_steps, shard_batches

READY_MESSAGE = "training: ready (SIGTERM or Ctrl-C saves a checkpoint and exits)"


class TrainingDivergedError(FloatingPointError):
  pass


class _Preemption:
  """Records SIGTERM / SIGINT so the loop can checkpoint at the next step boundary and exit."""

  def __init__(self):
    self.requested = None  # the signal's name once one arrived
    self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}

  def _handle(self, signum, frame):
    self.requested = signal.Signals(signum).name
    if signum == signal.SIGINT:  # a second Ctrl-C interrupts at once
      signal.signal(signal.SIGINT, signal.default_int_handler)

  def agreed(self) -> Optional[str]:
    """The stop request as agreed by all processes (any process's request stops all)."""
    if jax.process_count() == 1:
      return self.requested
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.int32(self.requested is not None))
    if np.any(flags):
      return self.requested or "SIGTERM (another process)"
    return None

  def restore(self):
    for s, old in self._old.items():
      signal.signal(s, old)


def _fmt_time(seconds: float) -> str:
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h:d}:{m:02d}:{s:02d}"


def _json_safe(record: dict) -> dict:
  return {
    k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()
  }


class _MetricsLog:
  """workdir/metrics.jsonl, keeping one record per step: a resumed run first drops the records
  after its start step (they were written by the interrupted run after its last checkpoint)."""

  def __init__(self, workdir: str, start: int):
    self.path = os.path.join(workdir, "metrics.jsonl")
    kept = []
    if os.path.exists(self.path):
      with open(self.path) as f:
        for line in f:
          try:
            rec = json.loads(line)
          except ValueError:
            continue  # a line cut short by a kill
          if isinstance(rec, dict) and rec.get("step", math.inf) <= start:
            kept.append(json.dumps(rec))
      tmp = self.path + ".tmp"
      with open(tmp, "w") as f:
        f.write("".join(line + "\n" for line in kept))
      os.replace(tmp, self.path)
    self.file = open(self.path, "a")

  def write(self, record: dict) -> None:
    self.file.write(json.dumps(_json_safe(record), allow_nan=False) + "\n")
    self.file.flush()

  def close(self) -> None:
    self.file.close()


def _check_finite(metrics: dict, first_step: int, ckpt: Checkpointer) -> None:
  """Raises TrainingDivergedError naming the first step with a non-finite loss, gradient or parameter."""
  checks = (
    ("loss", metrics["loss"]),
    ("gradient norm", metrics["grad_norm"]),
    ("a parameter", np.where(metrics["params_finite"] > 0, 0.0, np.nan)),
  )
  bad = [
    (int(np.argmax(~np.isfinite(v))), name, v) for name, v in checks if not np.isfinite(v).all()
  ]
  if not bad:
    return
  i, name, v = min(bad, key=lambda b: b[0])
  what = f"{name} is {v[i]}" if name != "a parameter" else "a parameter is not finite"
  ckpt.wait()
  last = ckpt.latest_step()
  kept = (
    f"the last good checkpoint (step {last} in {ckpt.directory}) is kept"
    if last is not None
    else "no checkpoint had been written yet (this run started from scratch)"
  )
  raise TrainingDivergedError(
    f"training stopped at step {first_step + i}: {what}; nothing of it was saved, {kept}. "
    f"Try a lower optim.lr or optim.grad_clip > 0."
  )


def train(config, workdir: str, *, bundle: Optional[ru.Bundle] = None, mesh=None) -> dict:
  """Trains `config` in `workdir` (resuming if it holds a checkpoint).

  `bundle` (from `runner_utils.build`) and `mesh` (1-D, axis 'data', over all processes' devices)
  are built here when not given. Returns the last logged metrics plus `step` and `preempted`
  (the signal's name when training stopped early on SIGTERM / SIGINT, else None).
  """
  ru.apply_cpu_workaround()
  tr = config.training
  if tr.n_jitted_steps <= 0 or tr.n_iters <= 0 or tr.n_iters % tr.n_jitted_steps:
    raise ValueError(
      f"training.n_iters ({tr.n_iters}) must be a positive multiple of "
      f"n_jitted_steps ({tr.n_jitted_steps})"
    )
  bundle = ru.build(config) if bundle is None else bundle
  mesh = data_mesh() if mesh is None else mesh
  dataset = get_dataset(ru.data_spec(config), "train")
  # Compare only; the record is written with the first checkpoint.
  check_run_record(workdir, bundle.run_record, write=False)

  repl = NamedSharding(mesh, P())
  n = tr.n_jitted_steps
  # Convolutional networks on CPU: one unrolled step per call (a short compile) and n calls per
  # block; otherwise the n steps are one compiled lax.scan.
  per_call = 1 if bundle.unroll_train else n
  train_steps = jit_train_steps(
    make_train_steps(
      bundle.loss_fn,
      bundle.optimizer,
      ema_rate=bundle.ema_rate,
      ema_warmup=bundle.ema_warmup,
      micro_batches=bundle.micro_batches,
      unroll=bundle.unroll_train,
    ),
    mesh,
  )

  is_main = jax.process_index() == 0
  log = print if is_main else (lambda *a, **k: None)
  ckpt = Checkpointer(
    workdir, max_to_keep=tr.keep_checkpoints, save_interval_steps=tr.snapshot_freq, mesh=mesh
  )
  init_key, train_key = jax.random.split(jax.random.key(config.seed))
  abstract = jax.tree.map(
    lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=repl), bundle.abstract_state()
  )
  writer = metrics_log = preempt = None
  try:
    state, start = ckpt.restore_latest(abstract, log=lambda m: log(m, flush=True))
    if state is None:
      state = jax.jit(bundle.init_state, out_shardings=repl)(init_key)
      start = 0
    else:
      log(f"resumed from step {start} in {ckpt.directory}", flush=True)
    if is_main:
      from tensorboardX import SummaryWriter

      writer = SummaryWriter(os.path.join(workdir, "tb"))
      metrics_log = _MetricsLog(workdir, start)
    if ru.num_classes_of(config):  # label-conditional: (x, labels) batches
      from score_sde.data.base import labelled_batches

      batches = labelled_batches(
        dataset, tr.batch_size, start, config.seed, jax.process_index(), jax.process_count()
      )
    else:
      batches = dataset.batches(
        tr.batch_size, start, config.seed, jax.process_index(), jax.process_count()
      )
    snapshot = None
    if tr.snapshot_sampling:
      from score_sde.snapshots import SnapshotSampler

      snapshot = SnapshotSampler(config, bundle, dataset, workdir)
    preempt = _Preemption()
    # Every process says it is ready (a test or a job scheduler may signal any of them).
    print(
      READY_MESSAGE + (f" [process {jax.process_index()}]" if jax.process_count() > 1 else ""),
      flush=True,
    )
    log(f"compiling the train step ({per_call} step(s) per call, {n} per block)...", flush=True)
    step, last, window = start, {}, []
    t_compiled = step_compiled = None
    t_begin = time.time()
    stop = None
    while step < tr.n_iters:
      local = jax.tree.map(lambda *b: np.stack(b), *[next(batches) for _ in range(n)])
      parts = []
      for i in range(0, n, per_call):
        part = jax.tree.map(lambda v: shard_batches(v[i : i + per_call], mesh), local)
        state, m = train_steps(state, part, train_key)
        parts.append(m)
      metrics = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
      _check_finite(metrics, step + 1, ckpt)
      step += n
      window.extend(metrics["loss"].tolist())
      if t_compiled is None:
        t_compiled, step_compiled = time.time(), step
        log(
          f"step {step:7d}  compiled and ran the first block in {t_compiled - t_begin:.1f} s",
          flush=True,
        )
      stop = preempt.agreed()
      if step % tr.log_freq == 0 or step == tr.n_iters or stop:
        elapsed = time.time() - t_compiled
        rate = (step - step_compiled) / elapsed if step > step_compiled and elapsed > 0 else None
        last = {
          "loss": float(np.mean(window)),
          "loss_last": float(metrics["loss"][-1]),
          "grad_norm": float(metrics["grad_norm"][-1]),
        }
        window = []
        speed = (
          f"{rate:.1f} steps/s  ETA {_fmt_time((tr.n_iters - step) / rate)}"
          if rate
          else "steps/s and ETA after the next block"
        )
        log(
          f"step {step:7d}  loss {last['loss']:.5f} (mean)  grad_norm {last['grad_norm']:.3f}  "
          f"{speed}",
          flush=True,
        )
        if is_main:
          for k, v in last.items():
            writer.add_scalar(f"train/{k}", v, step)
          metrics_log.write({"step": step, **last, "steps_per_s": rate})
      if ckpt.save(step, state, force=step == tr.n_iters or stop is not None):
        check_run_record(workdir, bundle.run_record, write=True)
        # Pictures at the periodic and final checkpoints, not on the way out of a preemption.
        if snapshot is not None and not stop:
          path = snapshot(state.ema_params, step, writer, write=is_main)
          log(f"step {step:7d}  snapshot samples: {path}", flush=True)
      if stop:
        ckpt.wait()
        log(
          f"{stop}: saved checkpoint at step {step}, exiting; rerun the same command to resume",
          flush=True,
        )
        break
  finally:
    ckpt.wait()
    ckpt.close()
    if preempt is not None:
      preempt.restore()
    if writer is not None:
      writer.close()
    if metrics_log is not None:
      metrics_log.close()
  return dict(last, step=step, preempted=stop)
