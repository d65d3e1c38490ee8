"""The design space after score-SDE, on digits: one network, one training budget, four formulations.

  vp_dsm     VP SDE, eps target, continuous DSM (Song et al. 2021)
  edm        EDM path a = 1, s = t; EDM preconditioning, log-normal sigma, lambda = 1 / c_out^2
             (Karras et al. 2022)
  cosine_v   cosine path, v (velocity) target, MSE in v (Salimans & Ho 2022 style)
  linear_v   linear path a = 1 - t, s = t, velocity target (rectified flow / flow matching)

Each is trained with the same small U-Net (configs/digits/vp_small_unet.py's), batch, steps,
optimizer and seed, through the package's own runner, then sampled with every sampler of the table
(EDM Heun, PC Euler-Maruyama, DDIM, and any other one-pass sampler given by --samplers) at several
NFE budgets, all ending at the same sigma_min = s / a = 0.002. Quality: digits FD (the classifier
features of score_sde.digits_metric; lower is better) and sliced W2 to held-out digits, both from
the same number of samples.

    python experiments/design_space.py                 # ~10 min on 2 CPU cores
    python experiments/design_space.py --n_iters 4000 --num_samples 1000 --nfes 10,20,50,100,200

Writes experiments/results/design_space.json (or --out) and prints a Markdown table.
"""

import argparse
import json
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from score_sde import runner_utils as ru
from score_sde.data import get_dataset
from score_sde.metrics import sliced_wasserstein
from score_sde.sampling import dispatch
from score_sde.train import train

try:  # the digits FD of the evaluation issue, when present
  from score_sde import digits_metric
except ImportError:  # pragma: no cover
  digits_metric = None

SIGMA_MIN = 0.002
SETUPS = {
  "vp_dsm": {"sde": "vpsde", "target": "auto", "loss": "dsm", "preconditioning": "none"},
  "edm": {"sde": "edm", "target": "auto", "loss": "edm", "preconditioning": "edm"},
  "cosine_v": {"sde": "cosine", "target": "v", "loss": "dsm", "preconditioning": "none"},
  "linear_v": {"sde": "linear", "target": "v", "loss": "dsm", "preconditioning": "none"},
}
# sampler -> (config.sampling overrides, score evaluations per step)
SAMPLERS = {
  "edm_heun": ({"method": "edm_heun"}, 2),
  "pc_em": ({"method": "pc", "predictor": "euler_maruyama", "corrector": "none"}, 1),
  "ddim": ({"method": "ddim", "eta": 0.0}, 1),
}


def make_config(setup: str, n_iters: int, seed: int):
  s = SETUPS[setup]
  config = ru.load_config(
    os.path.join(os.path.dirname(__file__), "..", "configs", "digits", "vp_small_unet.py")
  )
  config.seed = seed
  config.sde.name = s["sde"]
  config.sde.sigma_max = 80.0  # the EDM path's sigma_max (unused by the others)
  config.model.target = s["target"]
  config.model.preconditioning = s["preconditioning"]
  config.model.sigma_data = 0.6  # pixel std of the centred digits
  config.training.loss = s["loss"]
  config.training.n_iters = n_iters
  config.training.n_jitted_steps = 10  # unrolled on CPU: short programs compile fast
  config.training.log_freq = 100
  config.training.snapshot_freq = n_iters
  config.training.sample_at_end = False
  return config


def sample(config, score_fn, sde, shape, sampler: str, nfe: int, key):
  overrides, per_step = SAMPLERS[sampler]
  s = config.sampling
  for k, v in overrides.items():
    s[k] = v
  s.num_steps = max(1, nfe // per_step)
  s.eps = float(sde.t_of_sigma(SIGMA_MIN))
  build = dispatch.sampler_from_config(s, sde)
  loop = build(score_fn, shape)
  x, n = jax.jit(lambda k: loop.output(loop.run(loop.init(k), jnp.arange(loop.num_steps))))(key)
  return np.asarray(x), int(n)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--setups", default=",".join(SETUPS))
  p.add_argument("--samplers", default=",".join(SAMPLERS))
  p.add_argument("--nfes", default="10,20,50,100")
  p.add_argument("--n_iters", type=int, default=600)  # a multiple of 100
  p.add_argument("--num_samples", type=int, default=500)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument(
    "--out", default=os.path.join(os.path.dirname(__file__), "results", "design_space.json")
  )
  args = p.parse_args()
  nfes = [int(v) for v in args.nfes.split(",")]
  t0 = time.time()

  held_out = None
  clf = digits_metric.get_classifier() if digits_metric is not None else None
  rows = []
  for setup in args.setups.split(","):
    config = make_config(setup, args.n_iters, args.seed)
    ru.validate_config(config, jax.device_count())
    if held_out is None:
      test = get_dataset(ru.data_spec(config), "test")
      held_out = np.concatenate(list(_take(test, args.num_samples)))[: args.num_samples]
    with tempfile.TemporaryDirectory() as workdir:
      t_train = time.time()
      last = train(config, workdir)
      t_train = time.time() - t_train
      score_fn, sde, shape, _ = ru.load_score_fn(config, workdir)
    print(
      f"{setup}: trained {args.n_iters} steps in {t_train:.0f} s, loss {last['loss']:.4f}",
      flush=True,
    )
    for sampler in args.samplers.split(","):
      for nfe in nfes:
        key = jax.random.key(args.seed + 1)
        x, n = sample(config, score_fn, sde, (args.num_samples,) + tuple(shape), sampler, nfe, key)
        w2 = sliced_wasserstein(jax.random.key(7), jnp.asarray(x), jnp.asarray(held_out))
        row = {
          "setup": setup,
          "sampler": sampler,
          "nfe": n,
          "train_loss": last["loss"],
          "sliced_w2": float(w2),
        }
        if not np.all(np.isfinite(x)):
          row["sliced_w2"] = float("nan")
        elif clf is not None:
          row["digits_fd"] = float(digits_metric.digits_metrics(clf, x, centered=True)["digits_fd"])
        rows.append(row)
        print(json.dumps(row), flush=True)

  floor = {
    "sliced_w2": float(
      sliced_wasserstein(
        jax.random.key(7), jnp.asarray(held_out), jnp.asarray(_train_draw(config, args))
      )
    )
  }
  if clf is not None:
    floor["digits_fd"] = float(
      digits_metric.digits_metrics(clf, held_out, centered=True)["digits_fd"]
    )
  result = {
    "args": vars(args),
    "rows": rows,
    "floor": floor,
    "seconds": time.time() - t0,
    "devices": str(jax.devices()),
  }
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print(table(rows, floor))
  print(f"total {time.time() - t0:.0f} s")


def _take(dataset, n):
  got = 0
  for b in dataset.batches(min(n, 256), 0, 0):
    yield b
    got += len(b)
    if got >= n:
      return


def _train_draw(config, args):
  """Real training digits, as many as the samples: the distance floor of this sample size."""
  train_set = get_dataset(ru.data_spec(config), "train")
  return np.concatenate(list(_take(train_set, args.num_samples)))[: args.num_samples]


def table(rows, floor) -> str:
  """Markdown: one line per (setup, sampler), one column per NFE; digits FD (sliced W2)."""
  nfes = sorted({r["nfe"] for r in rows})
  key = "digits_fd" if "digits_fd" in floor else "sliced_w2"
  lines = [
    "| setup | sampler | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
    "|---|---|" + "---|" * len(nfes),
  ]
  groups = {}
  for r in rows:
    groups.setdefault((r["setup"], r["sampler"]), {})[r["nfe"]] = r
  for (setup, sampler), by_nfe in groups.items():
    cells = []
    for n in nfes:
      r = by_nfe.get(n)
      if r is None:
        cells.append("")
      elif key == "digits_fd":
        cells.append(f"{r.get('digits_fd', float('nan')):.2f} ({r['sliced_w2']:.3f})")
      else:
        cells.append(f"{r['sliced_w2']:.3f}")
    lines.append(f"| {setup} | {sampler} | " + " | ".join(cells) + " |")
  metric = "digits FD (sliced W2)" if key == "digits_fd" else "sliced W2"
  floor_s = ", ".join(f"{k} {v:.3f}" for k, v in floor.items())
  lines.append(f"\n{metric} to held-out digits; data-vs-data floor at this sample size: {floor_s}")
  return "\n".join(lines)


if __name__ == "__main__":
  main()
