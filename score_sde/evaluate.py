"""Sample quality after training: samples from the EMA model vs exact samples of the data.

For 2-D toy data the reference is fresh exact samples; for images the held-out test split. The
distance is the sliced Wasserstein-2 distance (metrics.py), reported with its noise floor: the same
distance between two independent sets of real samples of the same size.
"""
import json
import os

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


def sample_quality(config, workdir: str, samples: np.ndarray, step: int) -> dict:
  """Writes `workdir/quality_<step>_<run>.json` (<run>: the sampler, `sample_runner.run_name`)
  and returns {'sliced_w2', 'sliced_w2_floor', ...}."""
  from score_sde.sample_runner import run_name
  n = samples.shape[0]
  ref_a, ref_b = _reference_sets(config, n)
  key = jax.random.key(config.seed)
  flat = jnp.asarray(samples.reshape(n, -1))
  result = {
      "step": step,
      "num_samples": n,
      "sliced_w2": float(sliced_wasserstein(key, flat, jnp.asarray(ref_a))),
      "sliced_w2_floor": float(sliced_wasserstein(key, jnp.asarray(ref_b), jnp.asarray(ref_a))),
      "sampler": run_name(config.sampling),
  }
  if jax.process_index() == 0:
    with open(os.path.join(workdir, f"quality_{step}_{run_name(config.sampling)}.json"), "w") as f:
      json.dump(result, f, indent=1)
  return result
