"""The design space after score-SDE, on digits: one network, one training budget, four formulations.

  vp_dsm     VP SDE, eps target, continuous DSM (Song et al. 2021)
  edm        EDM path a = 1, s = t; EDM preconditioning, log-normal sigma, lambda = 1 / c_out^2
             (Karras et al. 2022)
  cosine_v   cosine path, v (velocity) target, MSE in v (Salimans & Ho 2022 style)
  linear_v   linear path a = 1 - t, s = t, velocity target (rectified flow / flow matching)

Network: the DDPM++ of configs/digits/vp_ddpmpp.py (`ncsnpp`, nf 16, 8x8 digits), not the
16x16 small U-Net, whose compilation alone takes minutes on the shared 2-core CPU. Each setup is
trained with that network, batch, optimizer, EMA and seed for --n_iters steps through the
package's own runner, then sampled with every sampler of the table (EDM Heun, PC Euler-Maruyama,
DDIM, DPM-Solver++(2M)) at several NFE budgets, all on the same Karras sigma grid (rho 7, so that
a sampler sees the same noise levels under every formulation; sigma = s / a) from sigma(T) down
to sigma_min = 0.002, without a final denoising step (PC's last step is its noise-free mean).
Quality: digits FD (the classifier features of score_sde.digits_metric; lower is better) and
sliced W2 to held-out digits, both from --num_samples samples (default: the 180 held-out digits,
whose own digits FD is the floor).

    python experiments/design_space.py   # the README table: 53 min wall at load 10-22 on 2 CPU cores
                                         # (1461 s user + sys, ~12 min on two quiet cores)
    python experiments/design_space.py --n_iters 100 --nfes 10 --samplers ddim --out runs/design_smoke.json

Writes experiments/results/design_space.json (or --out) and prints a Markdown table.
"""

import argparse
import json
import os
import resource
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
  "edm_heun": ({"method": "edm_heun", "noise_removal": False}, 2),
  "pc_em": ({"method": "pc", "predictor": "euler_maruyama", "corrector": "none"}, 1),
  "ddim": ({"method": "ddim", "eta": 0.0, "noise_removal": False}, 1),
  "dpm_solver_pp_2m": (
    {"method": "dpm_solver_pp", "order": 2, "multistep": True, "noise_removal": False},
    1,
  ),
}
CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "digits", "vp_ddpmpp.py")


def make_config(setup: str, n_iters: int, seed: int):
  s = SETUPS[setup]
  config = ru.load_config(CONFIG)
  config.seed = seed
  config.sde.name = s["sde"]
  config.sde.sigma_max = 80.0  # the EDM path's sigma_max (unused by the others)
  config.model.target = s["target"]
  config.model.preconditioning = s["preconditioning"]
  config.model.sigma_data = 0.6  # pixel std of the centred digits
  config.training.loss = s["loss"]
  config.training.n_iters = n_iters
  config.training.snapshot_freq = n_iters
  config.training.sample_at_end = False
  return config


def sampler_config(sampler: str, nfe: int, sde):
  """config.sampling of `sampler` with `nfe` score evaluations on the Karras grid of `sde`, down
  to sigma = SIGMA_MIN."""
  overrides, per_step = SAMPLERS[sampler]
  s = ru.load_config(CONFIG).sampling  # fresh: no option left over from the previous sampler
  for k, v in overrides.items():
    s[k] = v
  s.num_steps = max(1, nfe // per_step)
  s.schedule = "karras"
  s.eps = float(sde.t_of_sigma(SIGMA_MIN))
  return s


def sample_fn(score_apply, sde, shape, sampler: str, nfe: int):
  """jit(key, params -> (x, nfe)) of `sampler` with about `nfe` score evaluations; the parameters
  are an argument, not constants folded into the program."""
  build = dispatch.sampler_from_config(sampler_config(sampler, nfe, sde), sde)

  def run(key, params):
    loop = build(lambda x, t: score_apply(params, x, t), shape)
    return loop.output(loop.run(loop.init(key), jnp.arange(loop.num_steps)))

  return jax.jit(run)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--setups", default=",".join(SETUPS))
  p.add_argument("--samplers", default=",".join(SAMPLERS))
  p.add_argument("--nfes", default="10,20,50,100")
  p.add_argument("--n_iters", type=int, default=3000)  # a multiple of 100 (log_freq)
  p.add_argument("--num_samples", type=int, default=180)  # at most the 180 held-out digits
  p.add_argument("--seed", type=int, default=0)
  p.add_argument(
    "--out", default=os.path.join(os.path.dirname(__file__), "results", "design_space.json")
  )
  args = p.parse_args()
  ru.apply_cpu_workaround()
  nfes = [int(v) for v in args.nfes.split(",")]
  t0 = time.time()

  held_out = None
  clf = digits_metric.get_classifier() if digits_metric is not None else None
  rows, trained = [], {}
  for setup in args.setups.split(","):
    config = make_config(setup, args.n_iters, args.seed)
    ru.validate_config(config, jax.device_count())
    if held_out is None:
      held_out = _held_out(config, args.num_samples)
    with tempfile.TemporaryDirectory() as workdir:
      t_train = time.time()
      last = train(config, workdir)
      t_train = time.time() - t_train
      score_apply, params, sde, shape, _ = ru.load_ema_model(config, workdir)
    trained[setup] = {"train_loss": float(last["loss"]), "train_seconds": t_train}
    print(
      f"{setup}: trained {args.n_iters} steps in {t_train:.0f} s, loss {last['loss']:.4f}",
      flush=True,
    )
    for sampler in args.samplers.split(","):
      for nfe in nfes:
        t_s = time.time()
        run = sample_fn(score_apply, sde, (args.num_samples,) + tuple(shape), sampler, nfe)
        x, n = run(jax.random.key(args.seed + 1), params)
        x = np.asarray(x)
        row = {"setup": setup, "sampler": sampler, "nfe": int(n), "train_loss": last["loss"]}
        if np.all(np.isfinite(x)):
          w2 = sliced_wasserstein(jax.random.key(7), jnp.asarray(x), jnp.asarray(held_out))
          row["sliced_w2"] = float(w2)
          if clf is not None:
            row["digits_fd"] = float(
              digits_metric.digits_metrics(clf, x, centered=True)["digits_fd"]
            )
        else:  # a diverged sampler: no number rather than a misleading one
          row["sliced_w2"] = row["digits_fd"] = float("nan")
        row["seconds"] = time.time() - t_s
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
    # The held-out digits themselves, as experiments/reproduce_digits.py scores them (7.82 at 180).
    real = digits_metric.digits_splits()["test_x"][: args.num_samples]
    floor["digits_fd"] = float(digits_metric.digits_metrics(clf, real)["digits_fd"])
  usage = resource.getrusage(resource.RUSAGE_SELF)
  result = {
    "args": {**vars(args), "out": os.path.relpath(args.out)},
    "network": "configs/digits/vp_ddpmpp.py (ncsnpp, nf 16, 8x8)",
    "trained": trained,
    "rows": rows,
    "floor": floor,
    "seconds": time.time() - t0,
    "cpu_seconds": usage.ru_utime + usage.ru_stime,  # user + sys, all threads
    "devices": str(jax.devices()),
    "load_average": os.getloadavg(),
  }
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print(table(rows, floor))
  print(f"total {time.time() - t0:.0f} s")


def _held_out(config, n):
  """n held-out (test split) digits in the model's space, as the data pipeline gives them."""
  test = get_dataset(ru.data_spec(config), "test")
  held_out = np.concatenate(list(_take(test, n)))[:n]
  if len(held_out) < n:
    raise ValueError(f"--num_samples {n} exceeds the {len(held_out)} held-out digits")
  return held_out


def _take(dataset, n):
  """Batches of the first n examples of a split, each once (not the training stream's draws with
  replacement)."""
  got = 0
  for b in dataset.epoch(min(n, 256)):
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
