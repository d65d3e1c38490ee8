"""The notebooks run top to bottom against the current API, and their numbers agree with the math."""
import json
import os

import matplotlib
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(name):
  with open(os.path.join(REPO, "notebooks", name)) as f:
    cells = json.load(f)["cells"]
  matplotlib.use("Agg")
  namespace = {}
  for cell in cells:
    if cell["cell_type"] == "code":
      exec(compile("".join(cell["source"]), f"{name}", "exec"), namespace)
  return namespace


def test_walkthrough_runs_and_its_likelihood_is_exact():
  ns = _run("walkthrough.ipynb")
  # The last solve is the Hutchinson estimate: unbiased, so its batch mean sits within a few
  # standard errors of the exact mean log-density.
  err = np.asarray(ns["logp"] - ns["exact"])
  assert abs(err.mean()) < 5 * err.std() / np.sqrt(err.size) + 1e-3
