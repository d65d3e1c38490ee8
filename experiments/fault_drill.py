"""Kill drill: SIGKILLs at random moments during training and likelihood evaluation, and corrupt
newest checkpoints; every interrupted run must end bit-identical to an uninterrupted one.

    PYTHONPATH=$PWD python experiments/fault_drill.py --kills 3

1. train: an uninterrupted reference run of a small toy model; then the same run SIGKILLed `--kills`
   times, each at a uniformly random moment in 15-60% of the reference's wall time (a rerun
   resumes, so has less to do; one that finishes first ends the kills), and rerun until it
   finishes. Final train states (params, EMA, Adam moments, step) compared bit for bit.
2. eval: bits/dim (nats/dim on toys) of the reference checkpoint, uninterrupted vs killed `--kills`
   times and rerun; the per-example values compared bit for bit.
3. corrupt: for each way of damaging the newest checkpoint (truncated data file, deleted
   _METADATA, garbage manifest, emptied step directory, 4 KB of random bytes in the data file),
   a copy of the reference workdir is damaged and training rerun: it must move the checkpoint
   aside, resume from the previous one and end bit-identical to the reference.
Prints a table (and writes it to experiments/results/fault_drill.json).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "toy", "vp_eight_gaussians.py")
TRAIN = [
  "--config.model.hidden=32",
  "--config.model.num_layers=1",
  "--config.training.batch_size=64",
  "--config.training.n_iters=2000",
  "--config.training.n_jitted_steps=10",
  "--config.training.log_freq=100",
  "--config.training.snapshot_freq=100",
  "--config.training.keep_checkpoints=3",
  "--config.training.sample_at_end=False",
]
EVAL = TRAIN[:3] + [
  "--mode=eval",
  "--config.eval.enable_sampling=False",
  "--config.eval.enable_bpd=True",
  "--config.eval.batch_size=500",
  "--config.eval.rtol=1e-3",
  "--config.eval.atol=1e-3",
]


def _cmd(workdir, extra):
  return [sys.executable, "-m", "score_sde.main", "--config", CONFIG, "--workdir", workdir, *extra]


def _run(workdir, extra):
  t = time.time()
  out = subprocess.run(_cmd(workdir, extra), cwd=REPO, capture_output=True, text=True)
  if out.returncode != 0:
    raise RuntimeError(f"run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
  return time.time() - t, out.stdout


def _killed_then_finished(workdir, extra, kills, duration, rng):
  """SIGKILLs `kills` runs at random moments, then reruns to the end; returns (kill times, output)."""
  moments = []
  for _ in range(kills):
    proc = subprocess.Popen(
      _cmd(workdir, extra), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Each rerun resumes, so it has less left to do than the reference: the moments are drawn in
    # the first 60% of the reference's wall time, and a run that ends first ends the drill's kills
    # (the ones after it would hit a finished run).
    delay = rng.uniform(0.15, 0.6) * duration
    try:
      proc.wait(timeout=delay)
      moments.append(f"{delay:.1f}s (finished first)")
      break
    except subprocess.TimeoutExpired:
      proc.send_signal(signal.SIGKILL)
      proc.wait()
      moments.append(f"{delay:.1f}s")
  _, out = _run(workdir, extra)
  return moments, out


def _state(workdir):
  import jax

  from score_sde import runner_utils as ru
  from score_sde.checkpoint import Checkpointer

  config = ru.load_config(CONFIG)
  config.model.hidden, config.model.num_layers = 32, 1
  bundle = ru.build(config)
  ckpt = Checkpointer(workdir)
  state = ckpt.restore(bundle.abstract_state())
  ckpt.close()
  return [np.asarray(v) for v in jax.tree.leaves(jax.device_get(state))]


def _same(a, b):
  return len(a) == len(b) and all(u.dtype == v.dtype and np.array_equal(u, v) for u, v in zip(a, b))


def _bpd_values(workdir):
  (path,) = [p for p in os.listdir(workdir) if p.startswith("bpd_") and p.endswith(".jsonl")]
  recs = {}
  with open(os.path.join(workdir, path)) as f:
    for line in f:
      rec = json.loads(line)
      if "batch" in rec:
        recs[rec["batch"]] = rec["values"]
  return [recs[k] for k in sorted(recs)]


def load_corruptions():
  """{name: damage(checkpoint_dir)}: the same damage tests/test_checkpoint_recovery.py inflicts.

  That module imports its helpers from tests/conftest.py as pytest puts them on the path, so the
  tests folder goes on sys.path here too.
  """
  for path in (REPO, os.path.join(REPO, "tests")):
    if path not in sys.path:
      sys.path.insert(0, path)
  from tests.test_checkpoint_recovery import CORRUPTIONS

  return CORRUPTIONS


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--kills", type=int, default=5)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--out", default=os.path.join(REPO, "experiments", "results", "fault_drill.json")
  )
  args = parser.parse_args()
  corruptions = load_corruptions()

  rng = random.Random(args.seed)
  root = tempfile.mkdtemp(prefix="fault_drill_")
  rows = []

  ref = os.path.join(root, "reference")
  train_time, _ = _run(ref, TRAIN)
  ref_state = _state(ref)
  moments, out = _killed_then_finished(
    os.path.join(root, "killed"), TRAIN, args.kills, train_time, rng
  )
  rows.append(
    dict(
      drill="train",
      kills=", ".join(moments),
      identical=_same(_state(os.path.join(root, "killed")), ref_state),
    )
  )

  eval_ref = os.path.join(root, "eval_reference")
  shutil.copytree(ref, eval_ref)
  eval_time, _ = _run(eval_ref, EVAL)
  eval_killed = os.path.join(root, "eval_killed")
  shutil.copytree(ref, eval_killed)
  moments, _ = _killed_then_finished(eval_killed, EVAL, args.kills, eval_time, rng)
  rows.append(
    dict(
      drill="eval (nats/dim)",
      kills=", ".join(moments),
      identical=_bpd_values(eval_killed) == _bpd_values(eval_ref),
    )
  )

  for kind, damage in corruptions.items():
    from pathlib import Path

    work = os.path.join(root, f"corrupt_{kind}")
    shutil.copytree(ref, work)
    steps = sorted(int(p) for p in os.listdir(os.path.join(work, "checkpoints")) if p.isdigit())
    damage(Path(work) / "checkpoints" / str(steps[-1]))
    # The newest checkpoint is the final one: rerunning must redo the last 100 steps.
    _, out = _run(work, TRAIN)
    line = next((ln for ln in out.splitlines() if "is corrupt" in ln), "(no message)")
    moved = os.path.isdir(os.path.join(work, "checkpoints_corrupt", str(steps[-1])))
    rows.append(
      dict(
        drill=f"corrupt: {kind}",
        kills=line[:90] + ("..." if len(line) > 90 else ""),
        identical=_same(_state(work), ref_state) and moved,
      )
    )

  width = max(len(r["drill"]) for r in rows)
  print(f"\n{'drill':{width}}  bit-identical  kills / message")
  for r in rows:
    print(f"{r['drill']:{width}}  {str(r['identical']):13}  {r['kills']}")
  print(f"(reference training {train_time:.0f} s, evaluation {eval_time:.0f} s; work in {root})")
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(dict(rows=rows, kills=args.kills, seed=args.seed), f, indent=1)
  shutil.rmtree(root, ignore_errors=True)
  return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
  sys.exit(main())
