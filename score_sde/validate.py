"""The whole config checked before any compute: one error naming the field and what is allowed.

    validate(config, mode)              # fields, types, ranges, names, sampler, data
    validate_workdir(config, workdir, mode)

Every field must exist in `config_defaults.get_default_config()` with the default's type (the
`model` section alone holds extra fields: the network's hyperparameters, checked by the model);
numbers must lie in their allowed range; names (SDE, model, data set, optimizer, loss, sampler,
predictor, corrector, ODE solver, divergence) are looked up in their registries, so a new entry
there is accepted here without change. Errors are `ConfigError` (a ValueError) whose message
starts with the field, e.g. "config.training.ema_rate=2.0: must be in [0, 1)".

`sampling.num_steps = 0` means "the sampler's own default" (sde.num_scales for pc, 18 for
edm_heun, 50 for ddim, adaptive steps for ode): the command line cannot unset a field, so
`validate` turns 0 into None in place.

Nothing here starts a JAX backend (`jax.distributed.initialize` must come first in multi-process
runs), so device-count checks stay with the runner.
"""

import math
import os
from typing import Callable, Dict, Tuple

import ml_collections

MODES = ("train", "sample", "eval", "train_classifier")


class ConfigError(ValueError):
  """A config field, a file or a directory that cannot work; the message names it."""


def _positive(v):
  return v > 0


def _nonneg(v):
  return v >= 0


def _at_least_one(v):
  return v >= 1


def _unit_open(v):
  return 0 < v < 1


def _unit_left_closed(v):
  return 0 <= v < 1


_POS, _NONNEG, _ONE = (_positive, "> 0"), (_nonneg, ">= 0"), (_at_least_one, ">= 1")
_UNIT_OPEN, _UNIT_LC = (_unit_open, "in (0, 1)"), (_unit_left_closed, "in [0, 1)")

# field -> (predicate, what is allowed); None values (unset placeholders) are not checked here.
RANGES: Dict[str, Tuple[Callable, str]] = {
  "data.image_size": _ONE,
  "data.num_channels": _ONE,
  "sde.beta_min": _NONNEG,
  "sde.beta_max": _POS,
  "sde.sigma_min": _POS,
  "sde.sigma_max": _POS,
  "sde.num_scales": _ONE,
  "training.batch_size": _ONE,
  "training.n_iters": _ONE,
  "training.n_jitted_steps": _ONE,
  "training.log_freq": _ONE,
  "training.snapshot_freq": _ONE,
  "training.keep_checkpoints": _ONE,
  "training.eps": _UNIT_OPEN,
  "training.ema_rate": _UNIT_LC,
  "training.micro_batch_size": _ONE,
  "training.snapshot_num_samples": _ONE,
  "optim.lr": _POS,
  "optim.beta1": _UNIT_LC,
  "optim.beta2": _UNIT_LC,
  "optim.eps": _POS,
  "optim.weight_decay": _NONNEG,
  "optim.warmup": _NONNEG,
  "sampling.snr": _NONNEG,
  "sampling.n_steps_each": _ONE,
  "sampling.num_steps": _ONE,
  "sampling.eps": _UNIT_OPEN,
  "sampling.num_samples": _ONE,
  "sampling.batch_size": _ONE,
  "sampling.rtol": _POS,
  "sampling.atol": _POS,
  "sampling.rho": _POS,
  "sampling.s_churn": _NONNEG,
  "sampling.s_min": _NONNEG,
  "sampling.s_max": _NONNEG,
  "sampling.s_noise": _NONNEG,
  "sampling.eta": _NONNEG,
  "sampling.progress_chunks": _ONE,
  "eval.checkpoint": _NONNEG,
  "eval.batch_size": _ONE,
  "eval.rtol": _POS,
  "eval.atol": _POS,
  "eval.num_dequant": _ONE,
  "eval.num_samples": _ONE,
  "eval.begin_ckpt": _NONNEG,
  "eval.end_ckpt": _NONNEG,
  "training.label_dropout": _UNIT_LC,
  "sampling.guidance_scale": _NONNEG,
  "classifier.batch_size": _ONE,
  "classifier.n_iters": _ONE,
  "classifier.n_jitted_steps": _ONE,
  "classifier.log_freq": _ONE,
  "classifier.snapshot_freq": _ONE,
  "classifier.keep_checkpoints": _ONE,
  "classifier.lr": _POS,
  "classifier.warmup": _NONNEG,
  "classifier.ema_rate": _UNIT_LC,
  "classifier.eps": _UNIT_OPEN,
}
CHOICES = {
  "eval.bpd_dataset": ("test", "train"),
  "model.target": ("auto", "score", "eps", "x0", "v"),
  "sampling.condition": ("none", "class", "cfg", "inpaint", "colorize"),
  "sampling.cfg_form": ("eps", "score"),
}


def _fail(field: str, value, allowed: str):
  raise ConfigError(f"config.{field}={value!r}: {allowed}")


def _check_fields(config, default, prefix=""):
  """Unknown fields and wrong types, against the defaults (ints pass where floats are expected)."""
  for key, value in config.items():
    name = f"{prefix}{key}"
    if key not in default:
      if prefix in ("model.", "classifier.model."):
        continue  # network hyperparameters: the model checks them
      where = f"config.{prefix[:-1]} has" if prefix else "the config has top-level"
      raise ConfigError(
        f"config.{name} is not a config field; {where} fields "
        f"{sorted(default.keys())} (print them all with --print_config)"
      )
    ref = default[key]
    if isinstance(ref, ml_collections.ConfigDict):
      if not isinstance(value, ml_collections.ConfigDict):
        _fail(name, value, "must be a section")
      _check_fields(value, ref, name + ".")
    elif ref is not None and value is not None:
      ok = isinstance(value, type(ref)) or (isinstance(ref, float) and isinstance(value, int))
      if isinstance(value, bool) and not isinstance(ref, bool):
        ok = False
      if not ok:
        _fail(name, value, f"must be a {type(ref).__name__}")
  for key in default.keys():
    if key not in config:
      raise ConfigError(
        f"config.{prefix}{key} is missing; start the config from "
        "score_sde.config_defaults.get_default_config()"
      )


def _get(config, field: str):
  section, key = field.split(".")
  return config[section][key]


def _check_ranges(config, mode: str):
  for field, (ok, allowed) in RANGES.items():
    value = _get(config, field)
    if value is None:
      continue
    if isinstance(value, float) and math.isnan(value) or not ok(value):
      _fail(field, value, f"must be {allowed}")
  for field, allowed in CHOICES.items():
    if _get(config, field) not in allowed:
      _fail(field, _get(config, field), f"choose from {list(allowed)}")
  s, tr = config.sampling, config.training
  # num_samples need not be a multiple of the batch size (the paper's 50,000 in batches of
  # 1024): the last batch is drawn whole and cut (sample_runner.num_rounds).
  ev = config.eval
  if ev.begin_ckpt is not None and ev.end_ckpt is not None and ev.end_ckpt < ev.begin_ckpt:
    _fail("eval.end_ckpt", ev.end_ckpt, f"must be >= eval.begin_ckpt={ev.begin_ckpt}")
  if tr.micro_batch_size is not None and tr.batch_size % tr.micro_batch_size:
    _fail(
      "training.micro_batch_size",
      tr.micro_batch_size,
      f"must divide training.batch_size={tr.batch_size}",
    )
  for field in ("training.snapshot_freq", "training.log_freq", "training.n_iters"):
    if _get(config, field) % tr.n_jitted_steps:
      _fail(
        field,
        _get(config, field),
        f"must be a multiple of training.n_jitted_steps={tr.n_jitted_steps}",
      )
  if s.s_max < s.s_min:
    _fail("sampling.s_max", s.s_max, f"must be >= sampling.s_min={s.s_min}")
  if config.sde.name == "vesde" and config.sde.sigma_max <= config.sde.sigma_min:
    _fail("sde.sigma_max", config.sde.sigma_max, f"must be > sde.sigma_min={config.sde.sigma_min}")


def _as_config_error(field: str, fn, *args):
  """Runs a registry lookup; its ValueError ("unknown X 'y'; choose from [...]") names the field."""
  try:
    return fn(*args)
  except (ValueError, TypeError, KeyError) as e:
    raise ConfigError(f"config.{field}: {' '.join(str(e).split())}") from e


def _check_names(config):
  """Every name through its registry's lookup, then the sampler as the runner will build it."""
  from score_sde import likelihood, losses, ode, runner_utils as ru
  from score_sde.data import DATASETS
  from score_sde.models import utils as mutils
  from score_sde.registry import lookup
  from score_sde.sampling import dispatch, pc
  from score_sde.train_step import OPTIMIZERS

  sde = _as_config_error("sde.name", ru.build_sde, config)
  _as_config_error("model", ru.build_network, config)
  _as_config_error("model.target", mutils.resolve_target, sde, config.model.target)
  _as_config_error("data.name", lookup, DATASETS, config.data.name, "dataset")
  _as_config_error("optim.optimizer", lookup, OPTIMIZERS, config.optim.optimizer, "optimizer")
  _as_config_error("training.loss", losses.get_loss, config.training.loss)
  _as_config_error("model.preconditioning", ru.check_preconditioning, config)
  _as_config_error(
    "training.compute_dtype", lookup, ru.DTYPES, config.training.compute_dtype, "compute dtype"
  )
  ev = config.eval
  _as_config_error(
    "eval.ode_method", lookup, dict.fromkeys(ode.ODE_METHODS), ev.ode_method, "ODE solver"
  )
  _as_config_error("eval.divergence", lookup, likelihood.DIVERGENCES, ev.divergence, "divergence")
  s = config.sampling
  _as_config_error("sampling.method", lookup, dispatch.SAMPLERS, s.method, "sampling method")
  _as_config_error("sampling.predictor", lookup, pc.PREDICTORS, s.predictor, "predictor")
  _as_config_error("sampling.corrector", lookup, pc.CORRECTORS, s.corrector, "corrector")
  _as_config_error(
    "sampling.ode_method", lookup, dict.fromkeys(ode.ODE_METHODS), s.ode_method, "ODE solver"
  )
  # What is left depends on the combination (a predictor the SDE does not admit, a fixed-step
  # ODE solver without num_steps): the sampler's own checks, as the runner will run them.
  # Under eval_shape the arrays it builds (time grids) stay abstract: validation must not start
  # the backend, since jax.distributed.initialize has to come first in a multi-process run.
  _as_config_error("sampling", _abstractly, dispatch.sampler_from_config, s, sde)


def _abstractly(fn, *args):
  """fn(*args) traced under jax.eval_shape: its checks run, no array is computed."""
  import jax

  jax.eval_shape(lambda: (fn(*args), None)[1])


def _check_data(config, mode: str):
  """Data sets with files (image folders, TFDS) checked now rather than after compilation."""
  from score_sde import runner_utils as ru
  from score_sde.data import get_dataset

  if mode == "sample":
    return  # sampling reads no data
  splits = ("train", "test") if mode == "eval" or config.training.sample_at_end else ("train",)
  for split in splits:
    check = getattr(get_dataset(ru.data_spec(config), split), "check", None)
    if check is not None:
      check()


def validate(config, mode: str = "train", check_data: bool = True) -> None:
  """Raises ConfigError naming the first bad field (or data file) and what is allowed.

  Sets `sampling.num_steps` from 0 to None (the sampler's default) in place."""
  if mode not in MODES:
    raise ConfigError(f"mode {mode!r}: choose from {list(MODES)}")
  from score_sde.config_defaults import get_default_config

  _check_fields(config, get_default_config())
  if config.sampling.num_steps == 0:
    config.sampling.num_steps = None
  _check_ranges(config, mode)
  _check_names(config)
  if check_data:
    _check_data(config, mode)


def checkpoint_steps(workdir: str):
  """Steps with a finished checkpoint directory under workdir/checkpoints (orbax's layout)."""
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def validate_workdir(config, workdir: str, mode: str) -> None:
  """The workdir is a directory (or can be made one), and sample / eval find their checkpoint."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f"--workdir={workdir!r} is a file, not a directory")
  parent = os.path.dirname(os.path.abspath(workdir))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise ConfigError(f"--workdir={workdir!r}: {parent!r} is a file, not a directory")
  if mode in ("train", "train_classifier"):
    return
  if mode == "eval" and not (config.eval.enable_sampling or config.eval.enable_bpd):
    raise ConfigError(
      "--mode=eval with config.eval.enable_sampling=False and "
      "config.eval.enable_bpd=False has nothing to do"
    )
  if mode == "eval":
    for field in ("fid_stats", "inception_weights"):
      path = config.eval[field]
      if path and not os.path.isfile(path):
        raise ConfigError(f"config.eval.{field}={path!r}: no such file")
  steps = checkpoint_steps(workdir)
  if not steps:
    raise ConfigError(f"--mode={mode}: no checkpoint in {workdir}/checkpoints; train first")
  ev = config.eval
  if mode == "eval" and (ev.begin_ckpt is not None or ev.end_ckpt is not None):
    lo = -1 if ev.begin_ckpt is None else ev.begin_ckpt
    hi = math.inf if ev.end_ckpt is None else ev.end_ckpt
    if not any(lo <= s <= hi for s in steps):
      raise ConfigError(
        f"config.eval.begin_ckpt={ev.begin_ckpt}, end_ckpt={ev.end_ckpt}: no "
        f"checkpoint in that range in {workdir}/checkpoints; there are {steps}"
      )
    return
  step = config.eval.checkpoint
  if step is not None and step not in steps:
    raise ConfigError(
      f"config.eval.checkpoint={step}: no such checkpoint in {workdir}/checkpoints;"
      f" choose from {steps} (or leave it unset for the latest)"
    )
