"""Sample quality of a set of samples, by the kind of data (the runner side of the metrics).

    2-D toys: sliced Wasserstein-2 to fresh exact samples with its floor (the same distance
              between two real sets of the same size; score_sde.metrics), the exact NLL of the
              samples under the toy's density and the fraction off the modes (toy_metrics)
    digits:   digits FD, classifier score and class coverage (digits_metric; the classifier is
              trained and cached on first use, ~30 s), with the FD of as many held-out real
              digits (at most their 180) and of uniform noise for scale
    images:   FID / KID / IS against an Inception statistics file (`eval.fid_stats`, written by
              `python -m score_sde.fid_stats`; KID needs it saved with --save_features) with the
              weights `eval.inception_weights`; without them these are skipped, with a note

`sample_quality` is what training prints when it ends (sampling.num_samples samples); the eval
runner (score_sde.eval_runner) calls `quality_metrics` on its eval.num_samples samples.
"""

import json
import os
from typing import Dict, List, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from score_sde import runner_utils as ru
from score_sde.data import get_dataset
from score_sde.metrics import sliced_wasserstein


def _reference_sets(config, n: int):
  """Two independent real sample sets of size n (flattened), from the test and train splits."""
  spec = ru.data_spec(config)
  sets = []
  for split, seed in (("test", config.seed + 1), ("train", config.seed + 2)):
    it = get_dataset(spec, split).batches(n, 0, seed)
    sets.append(next(it).reshape(n, -1))
  return sets


def _toy_quality(config, samples: np.ndarray) -> Dict[str, float]:
  from score_sde.toy_metrics import toy_metrics

  n = samples.shape[0]
  ref_a, ref_b = _reference_sets(config, n)
  key = jax.random.key(config.seed)
  flat = jnp.asarray(samples.reshape(n, -1))
  out = {
    "sliced_w2": float(sliced_wasserstein(key, flat, jnp.asarray(ref_a))),
    "sliced_w2_floor": float(sliced_wasserstein(key, jnp.asarray(ref_b), jnp.asarray(ref_a))),
  }
  out.update(toy_metrics(config.data.name, samples.reshape(n, -1)))
  # The same two numbers for exact samples of the same size: what a perfect model scores.
  real = toy_metrics(config.data.name, ref_a)
  out.update(nll_real=real["nll"], off_mode_fraction_real=real["off_mode_fraction"])
  return out


def _digits_quality(config, samples: np.ndarray) -> Dict[str, object]:
  from score_sde import digits_metric as dm

  clf = dm.get_classifier()
  m = dm.digits_metrics(clf, samples, config.data.centered)
  # The held-out digits at the samples' size: at 16 x 16 both sides of the FD go through the
  # 16 -> 8 shrinking, which lowers the held-out digits' FD (4.96 against 7.82 at 8 x 8).
  test = dm.digits_splits(samples.shape[1])["test_x"]
  # And at the samples' count: FD is biased upward at small n (held-out digits: 7.82 at 180,
  # 25.8 at 64), so a bar at another n says nothing. There are 180 held-out digits: more samples
  # are also scored on their first 180.
  n = len(samples)
  ref = test[: min(n, len(test))]
  noise = np.random.default_rng(0).uniform(size=ref.shape).astype(np.float32)
  out = {
    "digits_fd": m["digits_fd"],
    "digits_fd_n": n,
    "classifier_score": m["classifier_score"],
    "coverage": m["coverage"],
    "class_fraction": np.asarray(m["class_fraction"]).tolist(),
    # For scale, at len(ref) images each: held-out real digits and uniform noise.
    "digits_fd_held_out": dm.digits_metrics(clf, ref)["digits_fd"],
    "digits_fd_noise": dm.digits_metrics(clf, noise)["digits_fd"],
    "digits_fd_held_out_n": len(ref),
    "classifier_test_accuracy": clf.test_accuracy,
  }
  if n > len(ref):
    out["digits_fd_at_held_out_n"] = dm.digits_metrics(
      clf, samples[: len(ref)], config.data.centered
    )["digits_fd"]
  return out


def _inception_quality(config, samples: np.ndarray) -> Tuple[Dict[str, object], List[str]]:
  ev = config.eval
  if not ev.fid_stats or not ev.inception_weights:
    return {}, [
      "FID / KID / IS skipped: set eval.fid_stats (python -m score_sde.fid_stats) and "
      "eval.inception_weights (see score_sde/inception.py)"
    ]
  from score_sde import fid, inception
  from score_sde.data.preprocess import postprocess_images

  variables = inception.load_inception_variables(ev.inception_weights)
  images = postprocess_images(samples, config.data.centered)
  out = inception.inception_outputs(variables, inception.batched(images, ev.batch_size))
  notes = []
  with np.load(ev.fid_stats) as f:
    stats = {k: f[k] for k in f.files}
  result = {
    "fid": fid.fid_from_features(out["pool3"], stats["mu"], stats["sigma"]),
    "inception_score": fid.inception_score(out["logits"])[0],
    "fid_stats": ev.fid_stats,
  }
  if "features" in stats:
    result["kid"], result["kid_std"] = fid.kernel_inception_distance(
      out["pool3"], stats["features"], np.random.default_rng(config.seed)
    )
  else:
    notes.append(f"KID skipped: {ev.fid_stats} has no features (fid_stats --save_features)")
  return result, notes


def quality_metrics(config, samples: np.ndarray) -> Tuple[Dict[str, object], List[str]]:
  """(metrics, notes) of samples [n, *shape] in the data set's space, by the kind of data."""
  from score_sde.toy_metrics import TOY_NAMES

  if config.data.name in TOY_NAMES:
    return _toy_quality(config, samples), []
  if config.data.name == "digits":
    return _digits_quality(config, samples), []
  return _inception_quality(config, samples)


def quality_line(q: Dict[str, object]) -> str:
  """One line for the console: the headline numbers of `quality_metrics`."""
  if "digits_fd" in q:
    n_ref = q["digits_fd_held_out_n"]
    first = ""
    if q["digits_fd_n"] > n_ref:
      first = f"{q['digits_fd_at_held_out_n']:.3f} on the first {n_ref}; "
    return (
      f"digits FD = {q['digits_fd']:.3f} ({first}at n = {n_ref}: held-out real digits"
      f" {q['digits_fd_held_out']:.3f}, noise {q['digits_fd_noise']:.1f}), classifier score"
      f" {q['classifier_score']:.2f}, coverage {q['coverage']:.3f}"
    )
  if "sliced_w2" in q:
    return (
      f"sliced W2 = {q['sliced_w2']:.4f} (floor {q['sliced_w2_floor']:.4f}), NLL = "
      f"{q['nll']:.3f} nats (exact samples {q['nll_real']:.3f}), off-mode fraction "
      f"{q['off_mode_fraction']:.4f} (exact samples {q['off_mode_fraction_real']:.4f})"
    )
  if "fid" in q:
    kid = f", KID {q['kid']:.5f}" if "kid" in q else ""
    return f"FID = {q['fid']:.3f}, Inception score {q['inception_score']:.3f}{kid}"
  return "no sample-quality metric for this data set (see the notes)"


def sample_quality(config, workdir: str, samples: np.ndarray, step: int) -> dict:
  """Writes `workdir/quality_<step>_<run>.json` (<run>: the sampler, `sample_runner.run_name`)
  and returns the `quality_metrics` with 'step', 'num_samples', 'sampler', 'notes'."""
  from score_sde.sample_runner import run_name

  q, notes = quality_metrics(config, samples)
  result = {
    "step": step,
    "num_samples": int(samples.shape[0]),
    "sampler": run_name(config.sampling),
    **q,
    "notes": notes,
  }
  if jax.process_index() == 0:
    with open(os.path.join(workdir, f"quality_{step}_{run_name(config.sampling)}.json"), "w") as f:
      json.dump(result, f, indent=1)
  return result
