"""How much the digits FD of held-out real digits moves with the split: the noise of the bar.

Issue 15 item 7 compares each model's digits FD (180 samples) with that of the 180 held-out real
digits, 7.82, which is one draw: one 90% / 10% split of the 1797 digits, one classifier. This
script redraws both. For each split seed s (seed 0 is `digits_metric.digits_splits`, the split the
models train on):

    digits_metric.digits_splits(seed=s): train = 90%, held out = the rest (180)
    classifier trained on train (the cached classifier's recipe and seed), reference statistics
    of its features on train;  FD_s = digits FD of the held-out 180 against them

and prints FD_s, their mean, standard deviation and range, writing them as JSON. A model's mean
FD over sampling seeds estimates the expectation of its FD at n = 180; the mean of FD_s estimates
the same expectation for unseen real digits, which the single 7.82 only samples.

    PYTHONPATH=$PWD python experiments/heldout_fd_spread.py --splits 20 \
        --out experiments/results/heldout_fd_spread.json
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from score_sde import digits_metric as dm  # noqa: E402


def held_out_fd(split_seed: int, classifier_seed: int, steps: int):
  """(digits FD of the held-out part, classifier accuracy on it) for one split, with a
  classifier trained as `digits_metric.build_classifier` trains the cached one."""
  clf = dm.build_classifier(seed=classifier_seed, steps=steps, split_seed=split_seed)
  test = dm.digits_splits(seed=split_seed)["test_x"]
  return dm.digits_metrics(clf, test)["digits_fd"], clf.test_accuracy


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--splits", type=int, default=20, help="split seeds 0 .. splits-1")
  parser.add_argument("--classifier_seed", type=int, default=0)
  parser.add_argument("--steps", type=int, default=4000, help="classifier training steps")
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  rows = []
  start = time.time()
  for s in range(args.splits):
    value, accuracy = held_out_fd(s, args.classifier_seed, args.steps)
    rows.append({"split_seed": s, "digits_fd": value, "accuracy": accuracy})
    print(f"split {s:3d}: held-out digits FD {value:7.3f}  accuracy {accuracy:.3f}", flush=True)
  fds = np.array([r["digits_fd"] for r in rows])
  summary = {
    "mean": float(fds.mean()),
    "std": float(fds.std(ddof=1)) if len(fds) > 1 else 0.0,
    "min": float(fds.min()),
    "max": float(fds.max()),
    "splits": len(fds),
    "num_held_out": len(dm.digits_splits()["test_x"]),
    "seconds": time.time() - start,
    "command": "python experiments/heldout_fd_spread.py " + " ".join(argv),
  }
  print(
    f"held-out digits FD over {len(fds)} splits: mean {summary['mean']:.3f}, "
    f"sd {summary['std']:.3f}, range {summary['min']:.2f} .. {summary['max']:.2f}"
  )
  if args.out:
    with open(args.out, "w") as f:
      json.dump({"summary": summary, "splits": rows}, f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1:])
