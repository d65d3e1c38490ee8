"""Training a noise-conditional classifier p_t(y | x_t) for classifier guidance (paper I.1).

    python -m score_sde.train_classifier --config configs/digits/classifier.py --workdir runs/digits
    score-sde --config configs/digits/classifier.py --workdir runs/digits --mode train_classifier

The classifier sees data noised by the config's own SDE, x_t = a(t) x0 + s(t) z with
t ~ U(classifier.eps, T), and the noise label its score network gets (`sde.noise_label`), and
minimises the cross-entropy of the true class (`noisy_classifier_loss`). It lives in
`<workdir>/classifier` (checkpoints, run.json, metrics.jsonl) beside the score model of the same
workdir, where `--mode sample` with `sampling.condition=class` finds it. Restarting resumes from
the latest checkpoint; batch k and the noise of step k depend only on (seed, k).
"""

import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from score_sde import runner_utils as ru
from score_sde.checkpoint import Checkpointer, check_run_record
from score_sde.controllable import noisy_classifier_loss
from score_sde.data import get_dataset
from score_sde.data.base import labelled_batches
from score_sde.models.classifiers import build_classifier
from score_sde.train_step import (
  TrainState,
  data_mesh,
  init_state,
  jit_train_steps,
  make_optimizer,
  make_train_steps,
)


def classifier_dir(workdir: str, config=None) -> str:
  """The classifier's directory: sampling.classifier_workdir, or <workdir>/classifier."""
  if config is not None and config.sampling.classifier_workdir:
    return config.sampling.classifier_workdir
  return os.path.join(workdir, "classifier")


def build_classifier_from_config(config):
  c = config.classifier.model
  return build_classifier(c.name, {k: v for k, v in c.items() if k != "name"})


def num_classes(config) -> int:
  return int(config.classifier.model.get("num_classes", 10))


def _optimizer(config):
  c = config.classifier
  return make_optimizer("adam", lr=c.lr, warmup=c.warmup, grad_clip=c.grad_clip)


def _init_params(classifier, key, shape):
  x = jnp.zeros((1,) + tuple(shape), jnp.float32)
  return classifier.init(key, x, jnp.ones((1,)))["params"]


def abstract_classifier_state(config, shape) -> TrainState:
  classifier, opt = build_classifier_from_config(config), _optimizer(config)
  return jax.eval_shape(
    lambda k: init_state(_init_params(classifier, k, shape), opt), jax.random.key(0)
  )


def _record(config, shape) -> dict:
  return {
    "classifier": config.classifier.model.to_dict(),
    "data_shape": list(shape),
    "sde": config.sde.name,
  }


def load_classifier_logits_fn(config, workdir: str):
  """(logits_fn(x, t) -> [B, K] from the EMA parameters, step) of the classifier of `workdir`."""
  from score_sde.models.classifiers import classifier_logits_fn

  directory = classifier_dir(workdir, config)
  shape = ru.example_shape(config)
  check_run_record(directory, _record(config, shape), write=False)
  ckpt = Checkpointer(directory)
  step = ckpt.latest_step()
  if step is None:
    raise FileNotFoundError(
      f"no classifier checkpoint in {directory}/checkpoints: train one with "
      "--mode train_classifier (python -m score_sde.train_classifier)"
    )
  state = ckpt.restore(abstract_classifier_state(config, shape), step)
  ckpt.close()
  fn = classifier_logits_fn(
    build_classifier_from_config(config),
    state.ema_params,
    ru.build_sde(config),
    ru.is_discrete(config),
  )
  return fn, step


def accuracy_by_time(logits_fn, x0, y, sde, key, times=(0.0, 0.25, 0.5, 0.75, 1.0)):
  """{t: accuracy of argmax p_t(y | x_t) on x_t = a(t) x0 + s(t) z}, for the log."""
  out = {}
  for i, t in enumerate(times):
    t = max(float(t), 1e-5)
    tt = jnp.full((len(x0),), t)
    a, s = sde.alpha_sigma(tt)
    z = jax.random.normal(jax.random.fold_in(key, i), x0.shape)
    xt = a.reshape((-1,) + (1,) * (x0.ndim - 1)) * x0 + s.reshape((-1,) + (1,) * (x0.ndim - 1)) * z
    out[round(t, 5)] = float(jnp.mean(jnp.argmax(logits_fn(xt, tt), -1) == y))
  return out


def train(config, workdir: str, *, mesh=None) -> dict:
  """Trains the classifier of `config` in <workdir>/classifier (resuming); returns the last
  metrics and the test accuracy at a few times."""
  c = config.classifier
  if c.n_iters % c.n_jitted_steps or c.snapshot_freq % c.n_jitted_steps:
    raise ValueError(
      f"classifier.n_iters={c.n_iters} and snapshot_freq={c.snapshot_freq} must be "
      f"multiples of classifier.n_jitted_steps={c.n_jitted_steps}"
    )
  directory = classifier_dir(workdir, config)
  sde = ru.build_sde(config)
  classifier = build_classifier_from_config(config)
  dataset = get_dataset(ru.data_spec(config), "train")
  shape = tuple(dataset.shape)
  k = num_classes(config)
  if getattr(dataset, "num_classes", 0) != k:
    raise ValueError(
      f"config.classifier.model.num_classes={k}, but data set {config.data.name!r} "
      f"has {getattr(dataset, 'num_classes', 0)} classes"
    )
  check_run_record(directory, _record(config, shape))
  discrete = ru.is_discrete(config)

  def loss_fn(key, params, batch):
    x0, y = batch
    logits_fn = lambda x, label: classifier.apply({"params": params}, x, label)
    return noisy_classifier_loss(key, logits_fn, x0, y, sde, eps=c.eps, discrete=discrete)

  ru.apply_cpu_workaround()
  mesh = data_mesh() if mesh is None else mesh
  repl = NamedSharding(mesh, P())
  optimizer = _optimizer(config)
  # As the score model's runner does: convolutional networks on CPU run one unrolled step per
  # call (XLA:CPU is slow on convolution gradients inside loops); otherwise one lax.scan.
  unroll = jax.default_backend() == "cpu" and len(shape) > 1
  per_call = 1 if unroll else c.n_jitted_steps
  train_steps = jit_train_steps(
    make_train_steps(loss_fn, optimizer, ema_rate=c.ema_rate, unroll=unroll), mesh
  )
  ckpt = Checkpointer(directory, max_to_keep=c.keep_checkpoints, mesh=mesh)
  init_key, train_key = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 1))
  start = ckpt.latest_step()
  if start is None:
    state = jax.jit(
      lambda key: init_state(_init_params(classifier, key, shape), optimizer), out_shardings=repl
    )(init_key)
    start = 0
  else:
    abstract = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=repl),
      abstract_classifier_state(config, shape),
    )
    state = ckpt.restore(abstract, start)
    print(f"resumed the classifier from step {start} in {ckpt.directory}", flush=True)
  batches = labelled_batches(
    dataset, c.batch_size, start, config.seed, jax.process_index(), jax.process_count()
  )
  sharding = NamedSharding(mesh, P(None, "data"))
  is_main = jax.process_index() == 0
  jsonl = open(os.path.join(directory, "metrics.jsonl"), "a") if is_main else None
  step, t_start, last = start, time.time(), {}
  try:
    while step < c.n_iters:
      chunk = [next(batches) for _ in range(c.n_jitted_steps)]
      local = (np.stack([b[0] for b in chunk]), np.stack([b[1] for b in chunk]))
      parts = []
      for i in range(0, c.n_jitted_steps, per_call):
        glob = jax.tree.map(
          lambda v: jax.make_array_from_process_local_data(sharding, v[i : i + per_call]), local
        )
        state, m = train_steps(state, glob, train_key)
        parts.append(m)
      metrics = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
      if not np.all(np.isfinite(metrics["loss"])):
        raise FloatingPointError(
          f"classifier loss is not finite near step {step}; the last good "
          f"checkpoint (step {ckpt.latest_step()}) is intact"
        )
      step += c.n_jitted_steps
      last = {key: float(v[-1]) for key, v in metrics.items()}
      if is_main and step % c.log_freq == 0:
        rate = (step - start) / (time.time() - t_start)
        print(f"classifier step {step:7d}  loss {last['loss']:.4f}  {rate:.1f} steps/s", flush=True)
        jsonl.write(json.dumps({"step": step, **last}) + "\n")
        jsonl.flush()
      if step % c.snapshot_freq == 0 or step == c.n_iters:
        ckpt.save(step, state)
  finally:
    ckpt.wait()
    ckpt.close()
    if jsonl is not None:
      jsonl.close()
  test = get_dataset(ru.data_spec(config), "test")
  x0, y = next(labelled_batches(test, 512, 0, config.seed + 1))
  from score_sde.models.classifiers import classifier_logits_fn

  fn = jax.jit(classifier_logits_fn(classifier, state.ema_params, sde, discrete))
  acc = accuracy_by_time(fn, jnp.asarray(x0), jnp.asarray(y), sde, jax.random.key(config.seed))
  if is_main:
    shown = "  ".join(f"t={t:g}: {a:.3f}" for t, a in acc.items())
    print(f"classifier test accuracy by t: {shown}", flush=True)
  return {**last, "test_accuracy": acc}


def main(argv=None):
  """`python -m score_sde.train_classifier --config FILE --workdir DIR [--config.x=y ...]`."""
  from score_sde import main as cli_main

  argv = list(sys.argv if argv is None else argv)
  if not any(a.startswith("--mode") for a in argv):
    argv.append("--mode=train_classifier")
  cli_main.cli(argv)


if __name__ == "__main__":
  main()
