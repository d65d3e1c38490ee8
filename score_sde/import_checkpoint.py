"""Import a checkpoint of the 2021 release into a workdir, for `--mode sample` / `--mode eval`.

    python -m score_sde.import_checkpoint --config configs/ve/cifar10_ncsnpp_deep_continuous.py \\
        --from pytorch --checkpoint checkpoint_12.pth --workdir runs/ve_deep
    python -m score_sde.main --config configs/ve/cifar10_ncsnpp_deep_continuous.py \\
        --workdir runs/ve_deep --mode sample

Two sources:
  --from pytorch: a `.pth` file of the PyTorch port (yang-song/score_sde_pytorch), a dict with
      'model' (the state dict, keys prefixed 'module.' by DataParallel), 'ema' ({'decay',
      'num_updates', 'shadow_params': trainable parameters in the model's order}), 'optimizer'
      and 'step'. Reading it needs PyTorch: `pip install score_sde[torch]`.
  --from jax: a flax msgpack checkpoint of the JAX release (yang-song/score_sde, files named
      `checkpoint_<n>`), the state dict of its training State: 'optimizer' {'target': parameters,
      ...}, 'params_ema', 'model_state' (batch statistics; empty for every released network),
      'step', ...

Every tensor is mapped explicitly, by name and shape, through `score_sde.release_layout`:
convolutions OIHW -> HWIO and linear layers [out, in] -> [in, out] from PyTorch, the JAX release
already in our layout but under its own module names; GroupNorm weight -> scale. The FIR
resampling filter is not stored by either release (it is the config's `fir_kernel`), and the
fused FIR convolutions keep the plain convolution layout: the release and `FIRConv2d` both compute
conv(upfirdn(x), w) with w as a correlation kernel. Any missing, unexpected or mis-shaped tensor,
a missing EMA entry or an unreadable file stops the import with a one-line error.

The workdir gets an orbax checkpoint at the release's step holding the model parameters, the EMA
parameters (which sampling uses) and a freshly initialised optimizer state (the release's Adam
moments are not carried over), and the run record that `--mode sample` checks.
"""

import os
import sys
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from score_sde.release_layout import Leaf, release_layout

SOURCES = ("pytorch", "jax")


class CheckpointImportError(ValueError):
  """The file cannot be read or does not hold the configured network (one-line message)."""


def _first(names, n: int = 3) -> str:
  names = list(names)
  more = f", ... ({len(names) - n} more)" if len(names) > n else ""
  return ", ".join(names[:n]) + more


def read_pytorch(path: str) -> Dict[str, Any]:
  """The dict stored in a `.pth` file (tensors as torch tensors)."""
  try:
    import torch
  except ImportError:
    raise CheckpointImportError(
      "reading PyTorch .pth files needs PyTorch: pip install 'score_sde[torch]'"
    ) from None
  try:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
  except FileNotFoundError:
    raise
  except Exception as e:  # noqa: BLE001  (torch raises many kinds on a damaged file)
    raise CheckpointImportError(
      f"cannot read {path} as a PyTorch checkpoint (truncated or not a .pth file): "
      f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    ) from None
  if not isinstance(ckpt, dict):
    raise CheckpointImportError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict")
  return ckpt


def read_jax(path: str) -> Dict[str, Any]:
  """The state dict stored in a flax msgpack checkpoint (arrays as numpy arrays)."""
  from flax import serialization

  with open(path, "rb") as f:
    data = f.read()
  try:
    ckpt = serialization.msgpack_restore(data)
  except Exception as e:  # noqa: BLE001  (msgpack raises several kinds on a damaged file)
    raise CheckpointImportError(
      f"cannot read {path} as a flax msgpack checkpoint (truncated or not a JAX release "
      f"checkpoint): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    ) from None
  if not isinstance(ckpt, dict):
    raise CheckpointImportError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict")
  return ckpt


def _numpy(x) -> np.ndarray:
  if hasattr(x, "detach"):  # a torch tensor (bfloat16 has no numpy form: go through float32)
    x = x.detach().cpu().float().numpy()
  return np.asarray(x, np.float32)


def _to_ours(leaf: Leaf, value: np.ndarray, from_torch: bool) -> np.ndarray:
  if from_torch and leaf.layout == "conv":
    return np.ascontiguousarray(np.transpose(value, (2, 3, 1, 0)))  # OIHW -> HWIO
  if from_torch and leaf.layout == "dense":
    return np.ascontiguousarray(value.T)  # [out, in] -> [in, out]
  return value


def _nest(flat: Mapping[Tuple[str, ...], np.ndarray]) -> Dict[str, Any]:
  tree: Dict[str, Any] = {}
  for path, value in flat.items():
    node = tree
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = value
  return tree


def _check_names(what: str, source: str, expected: List[str], present: Mapping[str, Any]) -> None:
  missing = [n for n in expected if n not in present]
  extra = sorted(set(present) - set(expected))
  if missing or extra:
    parts = []
    if missing:
      parts.append(f"{len(missing)} tensors missing ({_first(missing)})")
    if extra:
      parts.append(f"{len(extra)} unexpected ({_first(extra)})")
    raise CheckpointImportError(
      f"{source} does not hold this config's network: {what} has {len(present)} tensors, "
      f"the network needs {len(expected)}; " + "; ".join(parts)
    )


def _check_shape(source: str, name: str, got, want) -> None:
  if tuple(got) != tuple(want):
    raise CheckpointImportError(
      f"{source} does not hold this config's network: {name} has shape {tuple(got)}, the "
      f"network needs {tuple(want)}"
    )


def convert_pytorch(leaves: List[Leaf], ckpt: Mapping[str, Any], source: str = "checkpoint"):
  """(params, ema_params, step) in our layout from the PyTorch port's checkpoint dict."""
  if "model" not in ckpt:
    raise CheckpointImportError(
      f"{source} has no 'model' entry (keys: {sorted(ckpt)}): not a score_sde_pytorch checkpoint"
    )
  ema = ckpt.get("ema")
  if not isinstance(ema, Mapping) or "shadow_params" not in ema:
    raise CheckpointImportError(
      f"{source} has no EMA entry ('ema' with 'shadow_params'): the "
      "release samples with the EMA parameters, which are not there"
    )
  model = dict(ckpt["model"])
  if model and all(k.startswith("module.") for k in model):  # saved through nn.DataParallel
    model = {k[len("module.") :]: v for k, v in model.items()}
  _check_names("'model'", source, [leaf.torch for leaf in leaves], model)
  params = {}
  for leaf in leaves:
    value = _numpy(model[leaf.torch])
    _check_shape(source, f"'model' tensor {leaf.torch}", value.shape, leaf.torch_shape)
    params[leaf.ours] = _to_ours(leaf, value, True)
  trainable = [leaf for leaf in leaves if leaf.trainable]
  shadow = list(ema["shadow_params"])
  if len(shadow) != len(trainable):
    raise CheckpointImportError(
      f"{source} does not hold this config's network: 'ema' has {len(shadow)} shadow "
      f"parameters, the network has {len(trainable)} trainable tensors"
    )
  ema_params = {leaf.ours: params[leaf.ours] for leaf in leaves if not leaf.trainable}
  for i, (leaf, value) in enumerate(zip(trainable, shadow)):
    value = _numpy(value)
    _check_shape(
      source, f"EMA shadow parameter {i} (for {leaf.torch})", value.shape, leaf.torch_shape
    )
    ema_params[leaf.ours] = _to_ours(leaf, value, True)
  step = int(ckpt.get("step", 0))
  return _nest(params), _nest(ema_params), step


def _flatten_jax(tree, prefix="") -> Dict[str, Any]:
  out = {}
  for key, value in tree.items():
    name = f"{prefix}/{key}" if prefix else str(key)
    if isinstance(value, Mapping):
      out.update(_flatten_jax(value, name))
    else:
      out[name] = value
  return out


def convert_jax(leaves: List[Leaf], ckpt: Mapping[str, Any], source: str = "checkpoint"):
  """(params, ema_params, step) in our layout from the JAX release's checkpoint state dict."""
  optimizer = ckpt.get("optimizer")
  if not isinstance(optimizer, Mapping) or "target" not in optimizer:
    raise CheckpointImportError(
      f"{source} has no 'optimizer.target' parameters (keys: "
      f"{sorted(ckpt)}): not a JAX score_sde checkpoint"
    )
  if "params_ema" not in ckpt:
    raise CheckpointImportError(
      f"{source} has no EMA entry ('params_ema'): the release samples "
      "with the EMA parameters, which are not there"
    )
  model_state = _flatten_jax(ckpt.get("model_state") or {})
  if model_state:
    raise CheckpointImportError(
      f"{source} holds batch statistics ({_first(model_state)}), which "
      "this config's network does not have"
    )
  trees = {}
  for what, tree in (
    ("'optimizer.target'", optimizer["target"]),
    ("'params_ema'", ckpt["params_ema"]),
  ):
    flat = _flatten_jax(tree)
    _check_names(what, source, [leaf.jax for leaf in leaves], flat)
    out = {}
    for leaf in leaves:
      value = _numpy(flat[leaf.jax])
      if leaf.layout == "vector" and value.shape == (1, 1, 1) + leaf.shape:
        value = value.reshape(leaf.shape)  # the JAX release's InstanceNorm++ keeps [1, 1, 1, C]
      _check_shape(source, f"{what} tensor {leaf.jax}", value.shape, leaf.shape)
      out[leaf.ours] = value
    trees[what] = _nest(out)
  step = int(np.asarray(ckpt.get("step", 0)))
  return trees["'optimizer.target'"], trees["'params_ema'"], step


def network_leaves(config) -> List[Leaf]:
  """The release layout of the config's network (`config.model`, `config.data`)."""
  from score_sde.runner_utils import NON_NETWORK_KEYS

  hparams = {k: v for k, v in config.model.items() if k not in NON_NETWORK_KEYS}
  return release_layout(
    config.model.name, hparams, config.data.image_size, config.data.num_channels
  )


def _check_against_network(config, params, shape) -> None:
  """The imported tree has exactly the structure and shapes of the config's network."""
  import jax
  from flax.traverse_util import flatten_dict

  from score_sde import runner_utils as ru

  network = ru.build_network(config)
  abstract = jax.eval_shape(lambda k: ru.init_params(config, network, k, shape), jax.random.key(0))
  want = {k: tuple(v.shape) for k, v in flatten_dict(abstract).items()}
  got = {k: tuple(v.shape) for k, v in flatten_dict(params).items()}
  if want != got:
    diff = sorted("/".join(k) for k in set(want) ^ set(got))
    diff += sorted("/".join(k) for k in set(want) & set(got) if want[k] != got[k])
    raise CheckpointImportError(
      f"internal: the release layout of {config.model.name!r} does not "
      f"match the network ({_first(diff)})"
    )


def import_checkpoint(config, source: str, path: str, workdir: str) -> int:
  """Reads `path` (from the release `source`: 'pytorch' | 'jax'), converts it for `config`'s
  network and writes it to `workdir` as an orbax checkpoint at the release's step; returns it."""
  import jax
  import jax.numpy as jnp

  from score_sde import runner_utils as ru
  from score_sde.checkpoint import Checkpointer, check_run_record
  from score_sde.train_step import TrainState

  if source not in SOURCES:
    raise ValueError(f"unknown checkpoint source {source!r}; choose from {sorted(SOURCES)}")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no checkpoint file {path}")
  leaves = network_leaves(config)
  shape = ru.example_shape(config)
  record = ru.run_record(config, shape)
  if os.path.exists(os.path.join(workdir, "run.json")):
    check_run_record(workdir, record)  # fail before any work on a workdir of another model
  if source == "pytorch":
    params, ema_params, step = convert_pytorch(leaves, read_pytorch(path), path)
  else:
    params, ema_params, step = convert_jax(leaves, read_jax(path), path)
  _check_against_network(config, params, shape)

  params = jax.tree.map(jnp.asarray, params)
  ema_params = jax.tree.map(jnp.asarray, ema_params)
  optimizer = ru.optimizer_from_config(config)
  state = TrainState(
    step=jnp.asarray(step, jnp.int32),
    params=params,
    ema_params=ema_params,
    opt_state=optimizer.init(params),
  )
  check_run_record(workdir, record)
  ckpt = Checkpointer(workdir, max_to_keep=config.training.keep_checkpoints)
  try:
    others = sorted(set(ckpt.all_steps()) - {step})
    if others:
      # Sampling reads the latest step: an import beside other checkpoints could go unused.
      raise CheckpointImportError(
        f"workdir {workdir} already holds checkpoints at steps {others}; "
        "import into a new --workdir"
      )
    ckpt.save(step, state)
    ckpt.wait()
  finally:
    ckpt.close()
  return step


def main(argv):
  del argv
  from absl import flags

  FLAGS = flags.FLAGS
  step = import_checkpoint(FLAGS.config, getattr(FLAGS, "from"), FLAGS.checkpoint, FLAGS.workdir)
  print(
    f"imported {FLAGS.checkpoint} (step {step}) into {FLAGS.workdir}/checkpoints; sample with "
    f"python -m score_sde.main --config ... --workdir {FLAGS.workdir} --mode sample",
    flush=True,
  )


def cli():
  """`python -m score_sde.import_checkpoint`; a bad file or config prints one line and exits 1."""
  from absl import app, flags
  from ml_collections import config_flags

  config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
  flags.DEFINE_enum("from", None, list(SOURCES), "Which release wrote the checkpoint.")
  flags.DEFINE_string("checkpoint", None, "The release's checkpoint file (.pth or checkpoint_<n>).")
  flags.DEFINE_string("workdir", None, "Directory to write the orbax checkpoint to.")
  flags.mark_flags_as_required(["config", "from", "checkpoint", "workdir"])
  try:
    app.run(main)
  except (ValueError, TypeError, FileNotFoundError) as e:
    print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  cli()
