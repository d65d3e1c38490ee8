"""Training and sampling throughput of a config's real train step, on synthetic data.

    python experiments/benchmark_train.py --config configs/vp/cifar10_ddpmpp_continuous.py \
        --batch_size 128 --precision bf16 --steps 20 --out experiments/results/benchmark_train_gpu.json

Reports (printed and written as JSON): compile time of the jitted train step; train images/s (the
median over `--steps` timed calls after one warm-up call); peak device memory
(`device.memory_stats()['peak_bytes_in_use']`, null where the backend has none, with the process's
peak RSS beside it); model FLOPs per image from XLA's cost analysis of the compiled train step
(forward + backward + optimizer, divided by the batch) and of the forward pass alone; achieved FLOP/s and its fraction of the
device's peak (PEAK_FLOPS below; null for unknown devices such as CPUs); and sampling throughput,
score-function evaluations per second of the jitted EMA score function at the same batch.
`--cost_only` compiles the step and reports its FLOPs without running it.

The step is `score_sde.train_step.make_train_steps` with one optimizer step per call, jitted over
all local devices as in training; `--precision bf16` sets training.compute_dtype = bfloat16
(parameters and optimizer state stay float32).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from score_sde import runner_utils as ru  # noqa: E402
from score_sde.models import utils as mutils  # noqa: E402
from score_sde.train_step import data_mesh, init_state, jit_train_steps, make_train_steps  # noqa: E402

# Dense peak FLOP/s by (device kind substring, precision). H100 SXM: 989 TFLOP/s bf16 dense tensor
# cores, 67 TFLOP/s fp32 (non-tensor; XLA's default fp32 matmuls may use TF32 at up to 494 TFLOP/s,
# so an fp32 fraction above 1 is possible). H200 has the same compute as the H100 SXM.
PEAK_FLOPS = {
  ("H100", "bf16"): 989e12,
  ("H100", "fp32"): 67e12,
  ("H200", "bf16"): 989e12,
  ("H200", "fp32"): 67e12,
  ("A100", "bf16"): 312e12,
  ("A100", "fp32"): 19.5e12,
}


def peak_flops(device_kind: str, precision: str):
  for (kind, prec), value in PEAK_FLOPS.items():
    if kind in device_kind and prec == precision:
      return value
  return None


def flops_of(compiled) -> float:
  """Total 'flops' of a compiled executable from XLA's cost analysis (a dict, or a list of one)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost.get("flops", float("nan")))


def _block(tree):
  jax.tree.map(lambda a: a.block_until_ready(), tree)


def benchmark(config, batch_size: int, precision: str, steps: int, cost_only: bool = False) -> dict:
  config.training.batch_size = batch_size
  config.training.micro_batch_size = None
  config.training.compute_dtype = {"fp32": "float32", "bf16": "bfloat16"}[precision]
  ru.validate_config(config, jax.device_count())
  sde = ru.build_sde(config)
  network = ru.build_network(config)
  shape = (config.data.image_size, config.data.image_size, config.data.num_channels)
  mesh = data_mesh()
  repl = NamedSharding(mesh, P())
  optimizer = ru.optimizer_from_config(config)
  step_fn = jit_train_steps(
    make_train_steps(
      ru.make_loss_fn(config, network, sde), optimizer, ema_rate=config.training.ema_rate
    ),
    mesh,
  )
  key = jax.random.key(0)
  state = jax.jit(
    lambda k: init_state(ru.init_params(config, network, k, shape), optimizer), out_shardings=repl
  )(key)
  batches = jax.device_put(
    jax.random.normal(jax.random.key(1), (1, batch_size) + shape),
    NamedSharding(mesh, P(None, "data")),
  )

  t0 = time.perf_counter()
  compiled = step_fn.lower(state, batches, key).compile()
  compile_s = time.perf_counter() - t0
  flops_step = flops_of(compiled)
  # The network's forward pass alone (one score evaluation), for comparison with papers' counts.
  apply = ru.make_apply_fn(network, ru.DTYPES[config.training.compute_dtype])
  labels = jnp.ones((batch_size,))
  flops_fwd = flops_of(
    jax.jit(lambda p, x: apply(p, x, labels)).lower(state.params, batches[0]).compile()
  )
  device = jax.devices()[0]
  result = {
    "config": config.model.name,
    "batch_size": batch_size,
    "precision": precision,
    "device": device.device_kind,
    "num_devices": jax.device_count(),
    "backend": jax.default_backend(),
    "compile_s": compile_s,
    "flops_per_image_train_step": flops_step / batch_size,
    "flops_per_image_forward": flops_fwd / batch_size,
  }
  if cost_only:
    return result

  state, metrics = compiled(state, batches, key)  # warm-up
  _block(metrics)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batches, key)
    _block(metrics)
    times.append(time.perf_counter() - t0)
  step_s = statistics.median(times)
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  peak = peak_flops(device.device_kind, precision)
  achieved = flops_step / step_s
  result.update(
    {
      "step_s_median": step_s,
      "train_images_per_s": batch_size / step_s,
      "loss_last": float(np.asarray(metrics["loss"])[-1]),
      "peak_device_memory_bytes": (stats or {}).get("peak_bytes_in_use"),
      "process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
      "achieved_flops_per_s": achieved,
      "device_peak_flops_per_s": peak,
      "fraction_of_peak": achieved / peak if peak else None,
    }
  )

  # Sampling throughput: one batched evaluation of the EMA score function is one NFE per image.
  score_fn = mutils.score_fn_from_model(
    lambda x, label: apply(state.ema_params, x, label), sde, config.model.target
  )
  score = jax.jit(score_fn)
  x = batches[0]
  t = jnp.full((batch_size,), 0.5)
  _block(score(x, t))
  stimes = []
  for _ in range(steps):
    t0 = time.perf_counter()
    _block(score(x, t))
    stimes.append(time.perf_counter() - t0)
  result["score_evals_per_s"] = batch_size / statistics.median(stimes)
  return result


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--batch_size", type=int, required=True)
  parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--cost_only", action="store_true", help="compile and report FLOPs only")
  parser.add_argument("--out", default=None, help="JSON file; appended to when it holds a list")
  args = parser.parse_args(argv)
  result = benchmark(
    ru.load_config(args.config), args.batch_size, args.precision, args.steps, args.cost_only
  )
  result["config_path"] = args.config
  for k, v in result.items():
    print(f"{k:30s} {v}")
  if args.out:
    rows = []
    if os.path.exists(args.out):
      with open(args.out) as f:
        old = json.load(f)
      rows = old if isinstance(old, list) else [old]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
      json.dump(rows + [result], f, indent=1)
  return result


if __name__ == "__main__":
  main()
