"""The training runner: config -> sharded train loop with logging, checkpoints and resume.

Prints step, loss, steps/s and ETA; writes TensorBoard events (`workdir/tb`) and
`workdir/metrics.jsonl`. Checkpoints every `training.snapshot_freq` steps, at the end, and when
the process receives SIGTERM (preemption). Restarting in the same workdir resumes from the latest
checkpoint; batch k and the noise of step k depend only on (seed, k), so the resumed run reaches
the parameters an uninterrupted run would.
"""
import json
import os
import signal
import time

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from score_sde import runner_utils as ru
from score_sde.checkpoint import Checkpointer, check_run_record
from score_sde.data import get_dataset
from score_sde.train_step import (
  data_mesh,
  init_state,
  jit_train_steps,
  make_train_steps,
  shard_batches,
)


class _Preemption:
  """Records SIGTERM so the loop can checkpoint at the next step boundary and exit cleanly."""

  def __init__(self):
    self.requested = False
    self._old = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    self.requested = True

  def restore(self):
    signal.signal(signal.SIGTERM, self._old)


def _fmt_time(seconds: float) -> str:
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h:d}:{m:02d}:{s:02d}"


def train(config, workdir: str) -> dict:
  """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the last metrics."""
  if config.distributed:
    jax.distributed.initialize()
  ru.validate_config(config, jax.device_count())
  tr = config.training
  if tr.n_iters % tr.n_jitted_steps:
    raise ValueError(f"training.n_iters ({tr.n_iters}) must be a multiple of n_jitted_steps ({tr.n_jitted_steps})")
  sde = ru.build_sde(config)
  network = ru.build_network(config)
  dataset = get_dataset(ru.data_spec(config), "train")
  shape = tuple(dataset.shape)
  check_run_record(workdir, ru.run_record(config, shape))

  mesh = data_mesh()
  repl = NamedSharding(mesh, P())
  optimizer = ru.optimizer_from_config(config)
  micro = tr.batch_size // tr.micro_batch_size if tr.micro_batch_size else 1
  train_steps = jit_train_steps(
      make_train_steps(ru.make_loss_fn(config, network, sde), optimizer, ema_rate=tr.ema_rate,
                       micro_batches=micro), mesh)

  ckpt = Checkpointer(workdir, max_to_keep=tr.keep_checkpoints)
  init_key, train_key = jax.random.split(jax.random.key(config.seed))
  start = ckpt.latest_step()
  if start is None:
    state = jax.jit(lambda k: init_state(ru.init_params(config, network, k, shape), optimizer),
                    out_shardings=repl)(init_key)
    start = 0
  else:
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=repl),
                            ru.abstract_state(config, network, shape))
    state = ckpt.restore(abstract, start)
    print(f"resumed from step {start} in {ckpt.directory}", flush=True)

  is_main = jax.process_index() == 0
  writer = None
  if is_main:
    from tensorboardX import SummaryWriter
    writer = SummaryWriter(os.path.join(workdir, "tb"))
    jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
  batches = dataset.batches(tr.batch_size, start, config.seed, jax.process_index(), jax.process_count())
  preempt = _Preemption()
  n = tr.n_jitted_steps
  step, t_start, last = start, time.time(), {}
  try:
    while step < tr.n_iters:
      local = np.stack([next(batches) for _ in range(n)])
      state, metrics = train_steps(state, shard_batches(local, mesh), train_key)
      metrics = jax.tree.map(np.asarray, metrics)  # one host sync per n steps
      bad = ~np.isfinite(metrics["loss"])
      if bad.any():
        raise FloatingPointError(
            f"loss is {metrics['loss'][bad.argmax()]} at step {step + int(bad.argmax()) + 1}; training "
            f"stopped, the last good checkpoint (step {ckpt.latest_step()}) is intact")
      step += n
      last = {k: float(v[-1]) for k, v in metrics.items()}
      if is_main and step % tr.log_freq == 0:
        rate = (step - start) / (time.time() - t_start)
        eta = (tr.n_iters - step) / max(rate, 1e-9)
        print(f"step {step:7d}  loss {last['loss']:.5f}  grad_norm {last['grad_norm']:.3f}  "
              f"{rate:.1f} steps/s  ETA {_fmt_time(eta)}", flush=True)
        for k, v in last.items():
          writer.add_scalar(f"train/{k}", v, step)
        jsonl.write(json.dumps({"step": step, **last, "steps_per_s": rate}) + "\n")
        jsonl.flush()
      if step % tr.snapshot_freq == 0 or step == tr.n_iters or preempt.requested:
        ckpt.save(step, state)
      if preempt.requested:
        print(f"SIGTERM: saved checkpoint at step {step}, exiting", flush=True)
        break
  finally:
    ckpt.wait()
    ckpt.close()
    preempt.restore()
    if writer is not None:
      writer.close()
      jsonl.close()
  return last
