"""Sampler overhead: time per score evaluation inside a sampler / time of one bare score evaluation.

A sampler whose time loop runs on device (lax.scan, diffrax) should cost little more per step than
the network itself: ratio = (sampler wall time / NFE) / (one jitted score evaluation on the same
batch). Ratios near 1 mean the loop, the SDE coefficients and the noise draws are cheap next to
the network; large ratios mean per-step overhead (host round trips, recompilation, extra work).

Networks: 'small_unet' on digits-shaped input [B, 8, 8, 1] (or --size 16) and 'mlp' on [B, 2].
Parameters are jit arguments (not constants the compiler could fold). Times are medians over
--repeats runs after one warm-up (compile) run.

    python experiments/bench_sampler_overhead.py            # CPU, about a minute

Writes experiments/results/sampler_overhead.json (or --out).
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from score_sde.models.registry import build_model
from score_sde.models.utils import score_fn_from_model
from score_sde.runner_utils import make_apply_fn
from score_sde.sampling.ddim import ddim_sample
from score_sde.sampling.edm import edm_heun_sample
from score_sde.sampling.ode_sampler import ode_sample
from score_sde.sampling.pc import pc_sample
from score_sde.sde import VPSDE


def _median_seconds(fn, args, repeats):
  jax.block_until_ready(fn(*args))  # compile + warm up
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def bench(model_name, model_kwargs, shape, steps, repeats):
  sde = VPSDE()
  net = build_model(model_name, model_kwargs)
  key = jax.random.key(0)
  x = jax.random.normal(key, shape)
  params = net.init(key, x, jnp.zeros(shape[:1]))["params"]
  # Non-zero read-out so the network is not the zero function (its last layer is zero-initialised).
  params = jax.tree.map(lambda p: p + 0.01 * jax.random.normal(key, p.shape, p.dtype), params)
  apply = make_apply_fn(net)

  def score_fn_of(p):
    return score_fn_from_model(lambda xx, label: apply(p, xx, label), sde)

  t = jnp.full(shape[:1], 0.5)
  bare = _median_seconds(jax.jit(lambda p, x, t: score_fn_of(p)(x, t)), (params, x, t), repeats * 5)
  samplers = {
    "pc_euler_maruyama": lambda p, k: pc_sample(
      k, sde, score_fn_of(p), shape, predictor="euler_maruyama", corrector="none", num_steps=steps
    ),
    "ode_euler_fixed": lambda p, k: ode_sample(
      k, sde, score_fn_of(p), shape, method="euler", num_steps=steps
    ),
    "ode_heun_fixed": lambda p, k: ode_sample(
      k, sde, score_fn_of(p), shape, method="heun", num_steps=steps // 2
    ),
    "edm_heun": lambda p, k: edm_heun_sample(k, sde, score_fn_of(p), shape, num_steps=steps // 2),
    "ddim_eta0": lambda p, k: ddim_sample(k, sde, score_fn_of(p), shape, num_steps=steps),
  }
  rows = []
  for name, fn in samplers.items():
    jitted = jax.jit(fn)
    nfe = int(jitted(params, key)[1])
    secs = _median_seconds(lambda p, k: jitted(p, k)[0], (params, key), repeats)
    rows.append(
      dict(
        model=model_name,
        shape=list(shape),
        sampler=name,
        nfe=nfe,
        seconds=secs,
        seconds_per_nfe=secs / nfe,
        bare_score_seconds=bare,
        ratio=secs / nfe / bare,
      )
    )
    print(
      f"{model_name:10s} {str(shape):16s} {name:18s} NFE {nfe:4d}  {1e3 * secs / nfe:8.3f} ms/NFE  "
      f"bare {1e3 * bare:8.3f} ms  ratio {secs / nfe / bare:5.2f}"
    )
  return rows


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--size", type=int, default=8, help="image side for small_unet (8 or 16)")
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--steps", type=int, default=50, help="NFE budget of each sampler")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument(
    "--out",
    type=str,
    default=os.path.join(os.path.dirname(__file__), "results", "sampler_overhead.json"),
  )
  args = p.parse_args()
  rows = bench(
    "small_unet",
    dict(nf=16, ch_mult=(1, 2)),
    (args.batch, args.size, args.size, 1),
    args.steps,
    args.repeats,
  )
  rows += bench(
    "mlp", dict(hidden=128, num_layers=2), (args.batch * 16, 2), args.steps, args.repeats
  )
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(
      dict(
        backend=jax.default_backend(),
        devices=[str(d) for d in jax.devices()],
        steps=args.steps,
        repeats=args.repeats,
        rows=rows,
      ),
      f,
      indent=1,
    )
  print("wrote", args.out)


if __name__ == "__main__":
  main()
