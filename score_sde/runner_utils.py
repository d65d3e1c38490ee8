"""Config -> typed pieces, for the runners (train, sample, evaluate). The ConfigDict stops here.

`build(config)` validates the config once and returns a frozen `Bundle` (SDE, network, score
function, optimizer, loss, shapes) that the train, sample and eval runners share.
"""

import dataclasses
import os
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from score_sde import losses, models, sde as sde_lib
from score_sde.data import DATASETS, DataSpec, get_dataset
from score_sde.models import precond, utils as mutils
from score_sde.registry import lookup
from score_sde.train_step import OPTIMIZERS, TrainState, init_state, make_optimizer

NON_NETWORK_KEYS = ("name", "target", "preconditioning", "sigma_data")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def build_sde(config) -> sde_lib.LinearSDE:
  """The SDE named by config.sde.name, from the config.sde fields its constructor takes."""
  return sde_lib.sde_from_fields(config.sde.name, config.sde.to_dict())


def is_discrete(config) -> bool:
  """Whether the model is trained on the SDE's discrete chain (the release's continuous=False)."""
  return config.training.loss not in ("dsm", "edm")


def build_preconditioning(config):
  """The preconditioning object of `config.model.preconditioning` (None for 'none'), with
  sigma_data from config.model and the VP row's beta_min, beta_max, M from config.sde."""
  name = config.model.get("preconditioning", "none")
  if name == "none":
    return None
  fields = dict(config.sde.to_dict(), sigma_data=config.model.get("sigma_data", 0.5))
  return precond.get_preconditioning(name, fields)


def check_preconditioning(config) -> None:
  """The preconditioning's name, and its pairing with the loss and the target."""
  pre, loss = build_preconditioning(config), config.training.loss
  if loss == "edm" and pre is None:
    raise ValueError(
      "training.loss='edm' trains a denoiser: set model.preconditioning to 'edm', 'vp' or 've'"
    )
  if pre is not None and (loss not in ("dsm", "edm") or config.model.target != "auto"):
    raise ValueError(
      f"a preconditioned model (model.preconditioning="
      f"{config.model.preconditioning!r}) trains with training.loss 'dsm' or "
      f"'edm' and model.target 'auto', got {loss!r} and {config.model.target!r}"
    )
  if (
    pre is not None
    and not pre.positive_noise_label
    and config.model.get("embedding_type") == "fourier"
  ):
    # The Fourier embedding reads log(label): NaN for the negative labels this gives.
    raise ValueError(
      f"model.embedding_type='fourier' embeds the log of the noise label, but "
      f"model.preconditioning={config.model.preconditioning!r} labels with a log of sigma "
      f"(negative for small sigma): use embedding_type 'positional'"
    )


SIGMA_TABLE_KEYS = ("sigma_min", "sigma_max", "num_scales")


def network_kwargs(config) -> dict:
  """The network's hyperparameters: config.model, and for a discretely trained VE model the
  SMLD sigma table (config.sde.sigma_min, sigma_max, num_scales) that its integer level labels
  index (`models.noise_levels`), where the network has those fields and the config leaves them
  out. A table given in config.model (NCSN's norms) must be the SDE's."""
  kwargs = {k: v for k, v in config.model.items() if k not in NON_NETWORK_KEYS}
  if config.sde.name != "vesde" or not is_discrete(config):
    return kwargs
  fields = {f.name for f in dataclasses.fields(models.get_model_class(config.model.name))}
  for key in SIGMA_TABLE_KEYS:
    if key not in fields:
      continue
    want = config.sde[key]
    if kwargs.get(key) is None:
      kwargs[key] = want
    elif kwargs[key] != want:
      raise ValueError(
        f"config.model.{key}={kwargs[key]!r} differs from config.sde.{key}={want!r}: "
        "a discrete VE network's level labels index the SDE's sigma table"
      )
  return kwargs


def build_network(config):
  return models.build_model(config.model.name, network_kwargs(config))


def data_spec(config) -> DataSpec:
  return DataSpec.from_config(config.data)


def example_shape(config) -> Tuple[int, ...]:
  return tuple(get_dataset(data_spec(config), "train").shape)


def _type_check(config: ml_collections.ConfigDict, default: ml_collections.ConfigDict, prefix=""):
  """Every field must exist in the defaults and have the default's type (ints pass as floats)."""
  for key, value in config.items():
    name = f"{prefix}{key}"
    if key not in default:
      continue  # experiment-specific fields (network hyperparameters) are checked by their owner
    ref = default[key]
    if isinstance(ref, ml_collections.ConfigDict):
      if not isinstance(value, ml_collections.ConfigDict):
        raise TypeError(f"config.{name} must be a section, got {type(value).__name__}")
      _type_check(value, ref, name + ".")
    elif ref is not None and value is not None:
      ok = isinstance(value, type(ref)) or (isinstance(ref, float) and isinstance(value, int))
      if isinstance(ref, int) and not isinstance(ref, bool) and isinstance(value, bool):
        ok = False
      if not ok:
        raise TypeError(
          f"config.{name} must be {type(ref).__name__}, got {value!r} ({type(value).__name__})"
        )


def validate_config(config, num_devices: int) -> None:
  """Fails fast, before any compute, on unknown names, wrong types and impossible sizes."""
  _validate(config, num_devices)


def _validate(config, num_devices: int):
  """validate_config; returns the (sde, network) it had to build to check the config."""
  from score_sde.config_defaults import get_default_config

  _type_check(config, get_default_config())
  lookup(sde_lib.SDES, config.sde.name, "SDE")
  models.get_model_class(config.model.name)
  lookup(DATASETS, config.data.name, "dataset")
  lookup(OPTIMIZERS, config.optim.optimizer, "optimizer")
  losses.get_loss(config.training.loss)
  sde = build_sde(config)
  mutils.resolve_target(sde, config.model.target)
  lookup(DTYPES, config.training.compute_dtype, "compute dtype")
  network = build_network(config)
  tr = config.training
  if tr.keep_checkpoints < 1:
    raise ValueError(
      f"training.keep_checkpoints must be >= 1 (got {tr.keep_checkpoints}): with 0 "
      f"every checkpoint would be deleted"
    )
  if tr.batch_size <= 0 or tr.batch_size % num_devices:
    raise ValueError(
      f"training.batch_size={tr.batch_size} is not divisible by the {num_devices} devices"
    )
  if tr.micro_batch_size is not None:
    if tr.batch_size % tr.micro_batch_size or tr.micro_batch_size % num_devices:
      raise ValueError(
        f"training.micro_batch_size={tr.micro_batch_size} must divide batch_size="
        f"{tr.batch_size} and be divisible by the {num_devices} devices"
      )
  if (
    tr.n_jitted_steps <= 0
    or tr.snapshot_freq % tr.n_jitted_steps
    or tr.log_freq % tr.n_jitted_steps
  ):
    raise ValueError(
      f"training.snapshot_freq ({tr.snapshot_freq}) and log_freq ({tr.log_freq}) must be "
      f"multiples of n_jitted_steps ({tr.n_jitted_steps})"
    )
  check_preconditioning(config)
  if tr.loss not in ("dsm", "edm") and config.model.target not in ("auto", sde.default_target):
    raise ValueError(
      f"the discrete {tr.loss} loss trains the SDE's default target "
      f"{sde.default_target!r}, not {config.model.target!r}"
    )
  return sde, network


def make_apply_fn(network, compute_dtype=jnp.float32) -> Callable:
  """apply(params, x, label, train, dropout_key, labels) in `compute_dtype` with float32 output;
  `labels` ([B] int) only for label-conditional networks (model.num_classes > 0)."""

  def apply(params, x, label, train=False, dropout_key=None, labels=None):
    if compute_dtype != jnp.float32:
      params = jax.tree.map(lambda p: p.astype(compute_dtype), params)
      x = x.astype(compute_dtype)
    rngs = {"dropout": dropout_key} if dropout_key is not None else {}
    kw = {} if labels is None else {"labels": labels}
    return network.apply({"params": params}, x, label, train=train, rngs=rngs, **kw).astype(
      jnp.float32
    )

  return apply


def make_loss_fn(config, network, sde, train: bool = True):
  """loss_fn(key, params, x0) -> (loss, per-sample losses) for the configured objective; with
  train=False the network runs in eval mode (no dropout), as for the eval-split loss."""
  tr = config.training
  pre = build_preconditioning(config)
  # dsm on a preconditioned model's score is lambda |D - x0|^2 with lambda = 1 / sigma^2
  # (losses.py): the score-SDE losses as Table 1 writes them.
  target = "score" if pre is not None else mutils.resolve_target(sde, config.model.target)
  apply = make_apply_fn(network, DTYPES[tr.compute_dtype])
  time_sampler = None
  if tr.loss == "dsm":
    density = (
      losses.importance_density_for(sde, target, tr.likelihood_weighting)
      if tr.importance_sampling
      else None
    )
    time_sampler = losses.make_time_sampler(sde, tr.eps, density)
  loss = losses.get_loss(tr.loss)

  num_classes = num_classes_of(config)

  def loss_fn(key, params, batch):
    k_loss, k_drop = jax.random.split(key)
    # Label-conditional: batch = (x0, labels), labels dropped to "no label" for guidance; an
    # unlabelled batch (e.g. the eval-split loss) is scored as "no label".
    if num_classes and isinstance(batch, (tuple, list)):
      x0, labels = batch
      drop = jax.random.uniform(jax.random.fold_in(key, 2), labels.shape) < tr.label_dropout
      labels = jnp.where(drop, num_classes, labels)
    else:
      x0, labels = batch, None
    net = lambda x, label: apply(params, x, label, train, k_drop if train else None, labels)
    if tr.loss == "edm":
      return loss(
        k_loss,
        precond.denoiser_fn(net, pre),
        x0,
        sde,
        preconditioning=pre,
        p_mean=tr.p_mean,
        p_std=tr.p_std,
        reduce_mean=tr.reduce_mean,
      )
    if pre is not None:
      pred_fn = mutils.score_fn_from_model(net, sde, preconditioning=pre)
    else:
      pred_fn = mutils.pred_fn_from_model(net, sde, discrete=is_discrete(config))
    return loss(
      k_loss,
      pred_fn,
      x0,
      sde,
      target=target,
      reduce_mean=tr.reduce_mean,
      likelihood_weighting=tr.likelihood_weighting,
      time_sampler=time_sampler,
      eps=tr.eps,
    )

  return loss_fn


def num_classes_of(config) -> int:
  """model.num_classes (0 when absent): > 0 trains a label-conditional network on labelled data."""
  return int(config.model.get("num_classes", 0))


def init_params(config, network, key, shape):
  x = jnp.zeros((1,) + tuple(shape), jnp.float32)
  return network.init({"params": key, "dropout": key}, x, jnp.ones((1,)), train=False)["params"]


def optimizer_from_config(config):
  o = config.optim
  return make_optimizer(
    o.optimizer,
    lr=o.lr,
    beta1=o.beta1,
    beta2=o.beta2,
    eps=o.eps,
    weight_decay=o.weight_decay,
    warmup=o.warmup,
    grad_clip=o.grad_clip,
    decay_steps=o.decay_steps,
    total_steps=config.training.n_iters,
  )


def abstract_state(config, network, shape) -> TrainState:
  """The TrainState's structure and shapes, without allocating it."""
  opt = optimizer_from_config(config)
  return jax.eval_shape(
    lambda k: init_state(init_params(config, network, k, shape), opt), jax.random.key(0)
  )


def run_record(config, shape) -> dict:
  """What must match between a checkpoint and the config that resumes it."""
  return {"model": config.model.to_dict(), "data_shape": list(shape), "sde": config.sde.name}


@dataclasses.dataclass(frozen=True)
class Bundle:
  """The pieces of a run, built once from the config (see `build`).

  shape: one example's shape (e.g. (2,) or (H, W, C)); score_apply(params, x [B, *shape], t [B],
  labels=None) -> score [B, *shape] (labels [B] int: the classes of a label-conditional network,
  num_classes = "no label"; None: "no label"); loss_fn(key, params, x0) -> (loss, per-sample losses); optimizer: optax;
  unroll_train: whether the train step loop is unrolled (convolutional networks on CPU, where
  XLA runs convolution gradients inside a while loop far slower); run_record: what a checkpoint
  and the config resuming it must agree on.
  """

  sde: Any
  network: Any
  shape: Tuple[int, ...]
  optimizer: Any
  loss_fn: Callable
  score_apply: Callable
  unroll_train: bool
  ema_rate: float
  ema_warmup: bool
  micro_batches: int
  run_record: dict
  init_params: Callable  # key -> network parameters

  def init_state(self, key) -> TrainState:
    return init_state(self.init_params(key), self.optimizer)

  def abstract_state(self) -> TrainState:
    return jax.eval_shape(self.init_state, jax.random.key(0))

  def abstract_params(self) -> Any:
    return jax.eval_shape(self.init_params, jax.random.key(0))


def build(
  config, num_devices: Optional[int] = None, shape: Optional[Tuple[int, ...]] = None
) -> Bundle:
  """Validates `config` once and builds the run's pieces (no parameters are allocated)."""
  num_devices = jax.device_count() if num_devices is None else num_devices
  sde, network = _validate(config, num_devices)
  shape = example_shape(config) if shape is None else tuple(shape)
  tr = config.training
  apply = make_apply_fn(network, DTYPES[tr.compute_dtype])
  target = config.model.target
  discrete = is_discrete(config)
  pre = build_preconditioning(config)

  def score_apply(params, x, t, labels=None):
    # The one place where a network, its target and its preconditioning become a score: the
    # unconditional and the conditional samplers (controllable_runner) both call this.
    return mutils.score_fn_from_model(
      lambda x, label: apply(params, x, label, labels=labels),
      sde,
      target,
      discrete=discrete,
      preconditioning=pre,
    )(x, t)

  return Bundle(
    sde=sde,
    network=network,
    shape=shape,
    optimizer=optimizer_from_config(config),
    loss_fn=make_loss_fn(config, network, sde),
    score_apply=score_apply,
    unroll_train=jax.default_backend() == "cpu" and len(shape) > 1,
    ema_rate=float(tr.ema_rate),
    ema_warmup=bool(tr.ema_warmup),
    micro_batches=tr.batch_size // tr.micro_batch_size if tr.micro_batch_size else 1,
    run_record=run_record(config, shape),
    init_params=lambda key: init_params(None, network, key, shape),
  )


def apply_cpu_workaround() -> None:
  """Turns off XLA:CPU's concurrency-optimized scheduler for this process, if jax has not started.

  It deadlocks on some long lax.scan programs with jax 0.10 (seen: Langevin correctors inside a
  100-step scan on a [4000, 2] batch hang with every thread idle). The runners call this before
  jax initialises its backend; library users who hit the hang can set the same XLA_FLAGS.
  """
  flag = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
  from jax._src import xla_bridge

  if getattr(xla_bridge, "_backends", None):
    return  # too late: XLA_FLAGS are read when the backend starts
  if flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()


def load_ema_params(config, workdir: str, bundle: Bundle, step=None, mesh=None):
  """(EMA parameters, step) of a workdir's checkpoint (latest verified one if `step` is None).

  Only the EMA parameters are read, not the raw parameters or the optimizer moments.
  """
  from score_sde.checkpoint import Checkpointer, check_run_record

  check_run_record(workdir, bundle.run_record, write=False)  # sampling never writes the record
  ckpt = Checkpointer(workdir, mesh=mesh)
  try:
    if ckpt.latest_step() is None:
      raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints: train first")
    abstract = bundle.abstract_params()
    if step is None:
      params, step = ckpt.restore_latest_ema(abstract)
      if step is None:
        raise FileNotFoundError(f"no readable checkpoint in {workdir}/checkpoints: train first")
    else:
      params = ckpt.restore_ema(abstract, step)
  finally:
    ckpt.close()
  return params, step


def load_ema_model(config, workdir: str, step=None):
  """(score_apply(params, x, t), EMA params, sde, example shape, step) from a workdir's checkpoint.

  The parameters come apart from the function so that jitted samplers take them as arguments
  instead of baking tens of millions of constants into the compiled program.
  """
  bundle = build(config)
  params, step = load_ema_params(config, workdir, bundle, step)
  return bundle.score_apply, params, bundle.sde, bundle.shape, step


def load_score_fn(config, workdir: str, step=None):
  """(score_fn(x, t), sde, example shape, step) from the EMA parameters of a workdir's checkpoint."""
  score_apply, params, sde, shape, step = load_ema_model(config, workdir, step)
  return (lambda x, t: score_apply(params, x, t)), sde, shape, step


def load_config(path: str):
  """`get_config()` of a config file given by path (as --config does), for scripts and notebooks."""
  import importlib.util

  spec = importlib.util.spec_from_file_location("_score_sde_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()
