"""The evaluation runner, `--mode eval`: the paper's evaluation, resumable.

For each checkpoint step S with eval.begin_ckpt <= S <= eval.end_ckpt (either bound may be
unset; both unset: eval.checkpoint, else the latest checkpoint), from its EMA parameters:

  loss      (eval.enable_loss) the training objective on the test split, in batches of
            eval.batch_size, network in eval mode; batch j's noise from
            fold_in(fold_in(fold_in(key(seed), S), LOSS_STREAM), j)
  samples   (eval.enable_sampling) eval.num_samples samples with the `sampling` section's sampler,
            in R = ceil(num_samples / eval.batch_size) rounds of eval.batch_size; the last round
            is drawn whole like the others (one compilation) and the samples are cut to
            num_samples. Round i's key is sample_runner.round_key(seed, S, i), a function of
            (seed, S, i) only. Each round is written as soon as it is drawn, to
            workdir/eval/ckpt_S/samples_<run>/round_<i>.npz (<run>: sample_runner.run_name), so
            a killed evaluation redrawing nothing it finished; asking later for more samples
            draws only the new rounds.
  quality   of the samples (score_sde.evaluate.quality_metrics): toys sliced W2, exact NLL,
            off-mode fraction; digits the digits FD, classifier score, coverage; other images
            FID / KID / IS against eval.fid_stats with eval.inception_weights (else skipped)
  bits/dim  (eval.enable_bpd) score_sde.bpd_runner at S (its own resumable progress file)

and writes workdir/eval/ckpt_S/metrics_<run>.json (metrics.json when sampling is off).
"""

import json
import math
import os
import time
from typing import List, Optional

import jax
import numpy as np

from score_sde import runner_utils as ru
from score_sde.data import get_dataset

LOSS_STREAM = 0x10557  # folds the loss noise away from the sampling rounds' keys


def checkpoints_to_evaluate(
  available: List[int], begin: Optional[int], end: Optional[int], single: Optional[int]
) -> List[Optional[int]]:
  """Steps to evaluate, in order; [single] (None: the latest) when both bounds are unset."""
  if begin is None and end is None:
    return [single]
  lo = -1 if begin is None else begin
  hi = math.inf if end is None else end
  steps = [s for s in sorted(available) if lo <= s <= hi]
  if not steps:
    raise ValueError(f"no checkpoint with {begin} <= step <= {end}; there are {sorted(available)}")
  return steps


def eval_loss(config, bundle, params, step: int) -> dict:
  """Mean of the per-example training objective over the test split (network in eval mode)."""
  loss_fn = ru.make_loss_fn(config, bundle.network, bundle.sde, train=False)
  per_example = jax.jit(lambda k, p, x: loss_fn(k, p, x)[1])
  base = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), step), LOSS_STREAM)
  dataset = get_dataset(ru.data_spec(config), "test")
  values = [
    np.asarray(per_example(jax.random.fold_in(base, j), params, np.asarray(x)))
    for j, x in enumerate(dataset.epoch(config.eval.batch_size))
  ]
  values = np.concatenate(values).astype(np.float64)
  return {
    "loss": float(values.mean()),
    "loss_stderr": float(values.std(ddof=1) / math.sqrt(values.size)),
    "loss_num_examples": int(values.size),
  }


def _round_path(folder: str, i: int) -> str:
  return os.path.join(folder, f"round_{i:05d}.npz")


def _check_settings(folder: str, settings: dict) -> None:
  """The rounds in `folder` must come from these settings (batch size, seed, sampler...)."""
  path = os.path.join(folder, "settings.json")
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if saved != settings:
      raise ValueError(
        f"{folder} holds rounds drawn with other settings {saved}; now "
        f"{settings}. Delete the folder to draw them again."
      )
  elif jax.process_index() == 0:
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
      json.dump(settings, f, indent=1)


def draw_rounds(
  config, bundle, params, step: int, folder: str, mesh=None, max_rounds: Optional[int] = None
):
  """(samples [eval.num_samples, *shape] or None if rounds are missing, rounds drawn now, nfe).

  Rounds already in `folder` are read, not drawn; at most `max_rounds` new ones are drawn."""
  from score_sde import sample_runner as sr

  ev, s = config.eval, config.sampling
  build = sr.check_sampling_config(config, bundle.sde, jax.device_count())
  dataset = get_dataset(ru.data_spec(config), "test")
  settings = {
    "seed": config.seed,
    "step": step,
    "batch_size": ev.batch_size,
    "shape": list(bundle.shape),
    "sampling": json.loads(s.to_json()),
  }
  _check_settings(folder, settings)
  total = sr.num_rounds(ev.num_samples, ev.batch_size)
  todo = [i for i in range(total) if not os.path.exists(_round_path(folder, i))]
  if todo and len(todo) < total:
    print(f"resuming: {total - len(todo)} of {total} rounds already in {folder}", flush=True)
  batch_shape = (ev.batch_size,) + tuple(bundle.shape)
  ndev = jax.device_count()
  mesh = (mesh if mesh is not None else sr.data_mesh()) if ev.batch_size % ndev == 0 else None
  compiled = None
  drawn = 0
  for i in todo:
    if max_rounds is not None and drawn >= max_rounds:
      break
    if compiled is None:
      compiled = sr.compile_loop(build, bundle.score_apply, batch_shape, mesh, params=params)
    start = time.time()
    x, nfe = sr.draw(
      build,
      None,
      batch_shape,
      sr.round_key(config.seed, step, i),
      s.progress_chunks,
      mesh,
      progress=False,
      compiled=compiled,
    )
    x, extra = sr.to_data_range(
      sr._gather(x).astype(np.float32), dataset.is_image, config.data.centered
    )
    if jax.process_index() == 0:
      tmp = _round_path(folder, i) + ".tmp.npz"
      np.savez(tmp, samples=x, nfe=nfe, **extra)
      os.replace(tmp, _round_path(folder, i))  # a kill never leaves a half-written round
    drawn += 1
    print(
      f"round {i + 1}/{total}: {len(x)} samples, NFE {nfe}, {time.time() - start:.1f} s", flush=True
    )
  if any(not os.path.exists(_round_path(folder, i)) for i in range(total)):
    return None, drawn, None
  samples, nfes = [], []
  for i in range(total):
    with np.load(_round_path(folder, i)) as f:
      samples.append(f["samples"])
      nfes.append(int(f["nfe"]))
  return np.concatenate(samples)[: ev.num_samples], drawn, float(np.mean(nfes))


def _json_safe(value):
  if isinstance(value, dict):
    return {k: _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  return value


def evaluate_checkpoint(
  config, workdir: str, bundle, step: Optional[int], mesh=None, max_rounds: Optional[int] = None
) -> dict:
  """Everything `--mode eval` computes for one checkpoint (None: the latest); returns the
  metrics dict, written to JSON unless the sampling stopped early ('complete': False)."""
  from score_sde import evaluate
  from score_sde.sample_runner import run_name

  ev = config.eval
  params, step = ru.load_ema_params(config, workdir, bundle, step, mesh)
  folder = os.path.join(workdir, "eval", f"ckpt_{step}")
  result = {"step": step, "complete": True}
  notes = []
  if ev.enable_loss:
    result.update(eval_loss(config, bundle, params, step))
    print(
      f"step {step}: loss on the test split {result['loss']:.5f} +- "
      f"{result['loss_stderr']:.5f} (n = {result['loss_num_examples']})",
      flush=True,
    )
  if ev.enable_sampling:
    name = run_name(config.sampling)
    samples, drawn, nfe = draw_rounds(
      config, bundle, params, step, os.path.join(folder, f"samples_{name}"), mesh, max_rounds
    )
    result.update(sampler=name, num_samples=ev.num_samples, rounds_drawn=drawn)
    if samples is None:
      result["complete"] = False
      print(f"step {step}: sampling stopped after {drawn} new rounds; rerun to resume", flush=True)
      return result
    q, notes = evaluate.quality_metrics(config, samples)
    result.update(q, nfe=nfe)
    print(
      f"step {step}: {name}, {len(samples)} samples (NFE {nfe:.0f}): {evaluate.quality_line(q)}",
      flush=True,
    )
  if ev.enable_bpd:
    from score_sde import bpd_runner

    summary = bpd_runner.run(config, workdir, bundle=bundle, step=step)
    keys = (
      "units",
      "mean",
      "stderr",
      "mean_iw",
      "stderr_iw",
      "num_levels",
      "baseline_mean",
      "baseline_stderr",
      "num_examples",
      "complete",
    )
    result["bpd"] = {k: summary[k] for k in keys if k in summary}
    result["complete"] = result["complete"] and summary["complete"]
  for note in notes:
    print(f"note: {note}", flush=True)
  result["notes"] = notes
  if jax.process_index() == 0:
    os.makedirs(folder, exist_ok=True)
    stem = f"metrics_{result['sampler']}" if ev.enable_sampling else "metrics"
    path = os.path.join(folder, stem + ".json")
    with open(path, "w") as f:
      json.dump(_json_safe(result), f, indent=1)
    print(f"wrote {path}", flush=True)
  return result


def run(
  config, workdir: str, *, bundle=None, mesh=None, max_rounds: Optional[int] = None
) -> List[dict]:
  """Evaluates every selected checkpoint (module docstring); returns their metrics dicts.
  `max_rounds`: draw at most that many new sampling rounds per checkpoint (then stop; a later
  call resumes)."""
  from score_sde.validate import checkpoint_steps

  ru.apply_cpu_workaround()
  bundle = ru.build(config) if bundle is None else bundle
  ev = config.eval
  steps = checkpoints_to_evaluate(
    checkpoint_steps(workdir), ev.begin_ckpt, ev.end_ckpt, ev.checkpoint
  )
  return [evaluate_checkpoint(config, workdir, bundle, step, mesh, max_rounds) for step in steps]
