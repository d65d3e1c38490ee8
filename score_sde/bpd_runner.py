"""Evaluation runner for likelihoods: `--mode eval --config.eval.enable_bpd=True`.

Images: bits/dim of the data's L levels (the data set's `num_levels`: 256 for 8-bit images, 17
for the 8 x 8 digits) with uniform dequantization u = (x + U)/L and the data scaling of
config.data.centered, every term as derived in `score_sde.bpd` (J = config.eval.num_dequant draws
per image, averaged), reported beside the per-pixel categorical baseline over the L levels fitted
on the train split (`bpd.categorical_baseline`; `baseline_mean` in the summary). 2-D toy data
are continuous: the report is the negative log-likelihood in nats per dimension, -log p(x) / D,
with no dequantization.

log p comes from `score_sde.likelihood.log_likelihood` (probability-flow ODE, config.eval.ode_method,
rtol, atol, divergence) from the EMA parameters of checkpoint config.eval.checkpoint (latest if unset).
Batches are sharded across the local devices when the batch size divides evenly.

Progress: one JSON line per finished batch in `workdir/bpd_<step>_<split>.jsonl` (per-example
values, NFE), flushed as it goes. A rerun skips the batches already there; batch i's noise
(probes, dequantization) is a function of (seed, step, i) only, so an interrupted and resumed run
ends with exactly the numbers of an uninterrupted one. The summary goes to
`workdir/bpd_<step>_<split>.json` and is printed.
"""

import json
import math
import os
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from score_sde import bpd as bpd_lib, likelihood, ode, runner_utils as ru
from score_sde.data import get_dataset
from score_sde.registry import lookup
from score_sde.train_step import data_mesh


def _settings(config, step: int, is_image: bool, num_levels: int = 0) -> dict:
  ev = config.eval
  out = {
    "step": step,
    "split": ev.bpd_dataset,
    "ode_method": ev.ode_method,
    "rtol": ev.rtol,
    "atol": ev.atol,
    "divergence": ev.divergence,
    "batch_size": ev.batch_size,
    "seed": config.seed,
    "sde": config.sde.name,
  }
  if is_image:
    a, b = bpd_lib.data_scale(config.data.centered)
    out.update(
      units="bits/dim",
      num_dequant=ev.num_dequant,
      num_levels=num_levels,
      dequantization=f"uniform: u = (x + U) / {num_levels}, U ~ U[0,1)^D, fresh per draw",
      scaling=f"y = {a:g} u + {b:g}",
      formula=f"bpd = -(log p_y(y) + D log a - D log {num_levels}) / (D ln 2), averaged over draws",
    )
  else:
    out.update(
      units="nats/dim", dequantization="none (continuous data)", formula="nll = -log p(x) / D"
    )
  return out


def _check(config):
  ev = config.eval
  if ev.bpd_dataset not in ("train", "test"):
    raise ValueError(f"unknown eval.bpd_dataset {ev.bpd_dataset!r}; choose from ['test', 'train']")
  lookup(likelihood.DIVERGENCES, ev.divergence, "divergence")
  if ev.ode_method not in ode.ADAPTIVE:
    raise ValueError(
      f"eval.ode_method must be adaptive, one of {list(ode.ADAPTIVE)}; got {ev.ode_method!r}"
    )
  if ev.batch_size <= 0 or ev.num_dequant < 1:
    raise ValueError(
      f"eval.batch_size ({ev.batch_size}) and eval.num_dequant ({ev.num_dequant}) must be >= 1"
    )


def _read_progress(path: str, settings: dict) -> dict:
  """batch index -> record, from a progress file written by an earlier (possibly killed) run."""
  done = {}
  if not os.path.exists(path):
    return done
  with open(path) as f:
    lines = f.read().split("\n")
  for line in lines:
    try:
      rec = json.loads(line)
    except json.JSONDecodeError:
      continue  # a line cut short by a kill
    if "settings" in rec:
      if rec["settings"] != settings:
        raise ValueError(
          f"{path} was written with other settings {rec['settings']}; "
          f"now {settings}. Delete it to start over."
        )
    else:
      done[rec["batch"]] = rec
  return done


def _append(path: str, record: dict) -> None:
  with open(path, "a") as f:
    f.write(json.dumps(record) + "\n")
    f.flush()
    os.fsync(f.fileno())


def _levels(batch: np.ndarray, num_levels: int) -> np.ndarray:
  """Levels x in {0, ..., L - 1} of a batch preprocessed as p / 255 (no dequantization, not
  centred), where the 8-bit pixel is p = round(255 x / (L - 1)) (p = x for L = 256)."""
  p = np.round(batch * 255.0)
  x = np.round(p * (num_levels - 1) / 255.0)
  if np.max(np.abs(batch * 255.0 - p)) > 1e-3 or np.any(
    np.round(255.0 * x / (num_levels - 1)) != p
  ):
    raise ValueError(
      f"the image pipeline did not return {num_levels} levels "
      f"round(255 x / {num_levels - 1}) / 255; bits/dim needs them"
    )
  return x.astype(np.int32)


def categorical_baseline(train_set, eval_set, num_levels: int, batch_size: int) -> np.ndarray:
  """Per-example bits/dim [M] of the eval split under the per-pixel categorical baseline fitted
  on the train split (both raw-level data sets, see `run`)."""
  levels = lambda ds: np.concatenate([_levels(b, num_levels) for b in ds.epoch(batch_size)])
  return bpd_lib.categorical_baseline(levels(train_set), levels(eval_set), num_levels)


def run(
  config,
  workdir: str,
  *,
  max_batches: Optional[int] = None,
  bundle=None,
  step: Optional[int] = None,
) -> dict:
  """Evaluates log-likelihood over the config.eval.bpd_dataset split; returns the summary dict.

  `max_batches` stops after that many new batches (the summary then covers the batches done so
  far and says `complete: false`); a later call resumes. `step`: the checkpoint (default
  config.eval.checkpoint, else the latest).
  """
  ru.apply_cpu_workaround()
  _check(config)
  ev = config.eval
  bundle = ru.build(config) if bundle is None else bundle
  # Only the EMA parameters are read from the checkpoint.
  params, step = ru.load_ema_params(
    config, workdir, bundle, ev.checkpoint if step is None else step
  )
  score_apply, sde, shape = bundle.score_apply, bundle.sde, bundle.shape
  spec = ru.data_spec(config)
  dataset = get_dataset(spec, ev.bpd_dataset)
  is_image = dataset.is_image
  num_levels = dataset.num_levels if is_image else 0
  if is_image:  # raw levels; dequantization and scaling are done here, draw by draw
    import dataclasses

    raw_spec = dataclasses.replace(
      spec, centered=False, uniform_dequantization=False, random_flip=False
    )
    dataset = get_dataset(raw_spec, ev.bpd_dataset)
  d = int(np.prod(shape))
  settings = _settings(config, step, is_image, num_levels)
  stem = os.path.join(workdir, f"bpd_{step}_{ev.bpd_dataset}")
  progress_path = stem + ".jsonl"
  done = _read_progress(progress_path, settings)
  main = jax.process_index() == 0
  if main and not os.path.exists(progress_path):
    _append(progress_path, {"settings": settings})
  if done:
    print(
      f"resuming bits/dim evaluation: {len(done)} batches already in {progress_path}", flush=True
    )

  # Batches are host-local: each process evaluates its own over its local devices.
  mesh = data_mesh(jax.local_devices())
  # The parameters are an argument of the compiled solve, not constants baked into it.
  loglik_p = jax.jit(
    lambda p, k, y: likelihood.log_likelihood(
      k,
      sde,
      lambda x, t: score_apply(p, x, t),
      y,
      divergence=ev.divergence,
      method=ev.ode_method,
      rtol=ev.rtol,
      atol=ev.atol,
    )[::2]
  )
  loglik = lambda k, y: loglik_p(params, k, y)
  base_key = jax.random.fold_in(jax.random.key(config.seed), step)
  centered = config.data.centered
  if is_image:
    print(
      f"bits/dim: {num_levels} levels, uniform dequantization u = (x + U)/{num_levels} "
      f"({ev.num_dequant} draw(s) per image), centered={centered}: bpd = -log p_y / (D ln 2)"
      f" - log2 {bpd_lib.data_scale(centered)[0]:g} + log2 {num_levels}"
      + (
        ""
        if config.data.uniform_dequantization
        else " (note: the model was trained on k/255 without dequantization)"
      ),
      flush=True,
    )
  else:
    print(
      "toy data are continuous: reporting -log p(x) / D in nats/dim, no dequantization", flush=True
    )

  new = 0
  t_start = time.time()
  for i, batch in enumerate(dataset.epoch(ev.batch_size)):
    if i in done:
      continue
    if max_batches is not None and new >= max_batches:
      break
    n_dev = len(mesh.devices.reshape(-1))
    place = (
      (lambda a: jax.device_put(a, NamedSharding(mesh, P("data"))))
      if len(batch) % n_dev == 0
      else jnp.asarray
    )
    key = jax.random.fold_in(base_key, i)
    if is_image:
      levels = _levels(batch, num_levels)
      logps, nfe = [], 0
      for j in range(ev.num_dequant):
        k_deq, k_probe = jax.random.split(jax.random.fold_in(key, j))
        u = bpd_lib.dequantize(k_deq, jnp.asarray(levels), num_levels=num_levels)
        y = bpd_lib.to_model_space(u, centered)
        lp, n = loglik(k_probe, place(np.asarray(y)))
        logps.append(np.asarray(lp))
        nfe += int(n)
      res = bpd_lib.combine_draws(jnp.asarray(np.stack(logps)), d, centered, num_levels)
      rec = {
        "batch": i,
        "values": np.asarray(res["bpd"]).tolist(),
        "values_iw": np.asarray(res["bpd_iw"]).tolist(),
        "nfe": nfe,
      }
    else:
      lp, n = loglik(key, place(np.asarray(batch)))
      rec = {"batch": i, "values": np.asarray(bpd_lib.nats_per_dim(lp, d)).tolist(), "nfe": int(n)}
    if main:
      _append(progress_path, rec)
    done[i] = rec
    new += 1
    mean, se = bpd_lib.mean_and_stderr(np.concatenate([done[k]["values"] for k in sorted(done)]))
    print(
      f"batch {i}: {np.mean(rec['values']):.4f} {settings['units']} (nfe {rec['nfe']}); "
      f"running mean {mean:.4f} +- {se:.4f} over {len(done)} batches, "
      f"{time.time() - t_start:.1f}s",
      flush=True,
    )
  else:
    new = -1  # the loop ran to the end of the split

  values = np.concatenate([done[k]["values"] for k in sorted(done)]) if done else np.zeros(0)
  mean, se = bpd_lib.mean_and_stderr(values)
  summary = dict(
    settings,
    mean=mean,
    stderr=se,
    num_examples=int(values.size),
    num_batches=len(done),
    complete=new == -1,
    mean_nfe=float(np.mean([done[k]["nfe"] for k in done])) if done else math.nan,
  )
  if is_image and done:
    summary["mean_iw"], summary["stderr_iw"] = bpd_lib.mean_and_stderr(
      np.concatenate([done[k]["values_iw"] for k in sorted(done)])
    )
    baseline = categorical_baseline(
      get_dataset(raw_spec, "train"), dataset, num_levels, ev.batch_size
    )
    summary["baseline_mean"], summary["baseline_stderr"] = bpd_lib.mean_and_stderr(baseline)
    summary["baseline"] = (
      f"per-pixel categorical over the {num_levels} levels fitted on the "
      "train split (add-1/2 counts)"
    )
  if main:
    with open(stem + ".json", "w") as f:
      json.dump(summary, f, indent=1)
  state = "" if summary["complete"] else " (incomplete: rerun to resume)"
  print(
    f"{settings['units']} on the {ev.bpd_dataset} split at step {step}: {mean:.4f} +- {se:.4f} "
    f"(standard error, n = {values.size}; dequantization: {settings['dequantization']}){state}",
    flush=True,
  )
  if "baseline_mean" in summary:
    print(
      f"  baseline (per-pixel categorical over {num_levels} levels, fitted on train): "
      f"{summary['baseline_mean']:.4f} +- {summary['baseline_stderr']:.4f} bits/dim",
      flush=True,
    )
  return summary
