"""Checkpoints with orbax: periodic and preemption snapshots in `workdir/checkpoints`, keep the last k.

orbax writes each step to a temporary directory and renames it when complete, so a crash or a
SIGKILL mid-save leaves the previous checkpoint intact. Periodic snapshots are the multiples of
`save_interval_steps` (orbax's option of that name would also save a run's first step); the final
step and preemption saves are forced.

Verification: before each save a SHA-256 digest of the state's bytes goes to
`checkpoints/digests.json`. Restoring the newest checkpoint checks that it loads into the expected
structure, that every value is finite and that its bytes match the digest (orbax checks the
crc32c of its chunk indices; the digest also covers the data). A checkpoint that fails is moved
aside to `workdir/checkpoints_corrupt/<step>` (renamed, never deleted), one line says so, and the
previous checkpoint is tried.

The run's model and data settings are kept beside the checkpoints (`run.json`, written once the
first checkpoint exists) so that restarting with an incompatible config fails with a clear message
instead of an opaque shape error.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import time
from typing import Any, Callable, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


class IncompatibleCheckpointError(ValueError):
  pass


class CorruptCheckpointError(ValueError):
  pass


def state_digest(state: Any) -> str:
  """SHA-256 over the bytes of every leaf (tree-flatten order), with shapes and dtypes."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(state)):
    a = np.asarray(leaf)
    if a.dtype == object or jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
      continue
    h.update(f"{a.shape}{a.dtype}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


def flax_state_dict(tree: Any) -> Any:
  import flax

  return flax.serialization.to_state_dict(tree)


def _keys(tree: Any) -> list:
  return sorted(
    jax.tree_util.keystr(p)
    for p, _ in jax.tree_util.tree_flatten_with_path(
      tree, is_leaf=lambda v: hasattr(v, "shape") or v is None
    )[0]
  )


def _all_finite(tree: Any) -> bool:
  for leaf in jax.tree.leaves(jax.device_get(tree)):
    a = np.asarray(leaf)
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
      return False
  return True


class Checkpointer:
  """Save / restore a TrainState pytree under `workdir/checkpoints/<step>`.

  `save_interval_steps`: periodic saves (`save(step, state)`) happen when step is a multiple;
  `save(..., force=True)` always saves. `mesh`: restored leaves without a sharding are replicated
  over it (default: all devices), so a checkpoint written on N devices loads on any number.
  """

  def __init__(
    self,
    workdir: str,
    max_to_keep: int = 3,
    save_interval_steps: int = 1,
    mesh: Optional[Mesh] = None,
  ):
    if max_to_keep < 1:
      raise ValueError(
        f"training.keep_checkpoints must be >= 1 (got {max_to_keep}): with 0 every "
        f"checkpoint would be deleted"
      )
    self.workdir = workdir
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.corrupt_directory = os.path.abspath(os.path.join(workdir, "checkpoints_corrupt"))
    self.save_interval_steps = save_interval_steps
    self._options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=self._options)
    self._mesh = mesh

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def all_steps(self):
    return sorted(self.manager.all_steps())

  # --- digests ------------------------------------------------------------------------------
  def _digest_path(self) -> str:
    return os.path.join(self.directory, "digests.json")

  def _digests(self) -> dict:
    try:
      with open(self._digest_path()) as f:
        return json.load(f)
    except (OSError, ValueError):
      return {}

  def _write_digest(self, step: int, digest: dict) -> None:
    if jax.process_index() != 0:
      return
    keep = set(str(s) for s in self.all_steps())
    digests = {k: v for k, v in self._digests().items() if k in keep}
    digests[str(step)] = digest
    tmp = self._digest_path() + ".tmp"
    with open(tmp, "w") as f:
      json.dump(digests, f, indent=0, sort_keys=True)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, self._digest_path())

  # --- save / restore -----------------------------------------------------------------------
  def should_save(self, step: int) -> bool:
    return step % self.save_interval_steps == 0

  def save(self, step: int, state: Any, force: bool = False) -> bool:
    """Saves `state` at `step` if it is a multiple of the save interval (always with `force`)."""
    if not force and not self.should_save(step):
      return False
    # The digest is written before orbax commits the step: a kill in between leaves a digest
    # without a step (ignored), never a step with a stale digest.
    digest = {"state": state_digest(state)}
    if hasattr(state, "ema_params"):
      digest["ema_params"] = state_digest(state.ema_params)
    self._write_digest(step, digest)
    return self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def _replicated(self, abstract_state: Any) -> Any:
    # Leaves without a sharding are restored replicated over this process's mesh, so that a
    # checkpoint written on N devices loads on any other number (orbax would reuse the saved one).
    mesh = self._mesh if self._mesh is not None else Mesh(np.asarray(jax.devices()), ("data",))
    repl = NamedSharding(mesh, P())
    return jax.tree.map(
      lambda v: (
        v
        if getattr(v, "sharding", None) is not None
        else jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=repl)
      ),
      abstract_state,
    )

  def restore(self, abstract_state: Any, step: Optional[int] = None, verify: bool = True) -> Any:
    """Restores `step` (default latest) into the structure, shapes and shardings of `abstract_state`.

    Raises IncompatibleCheckpointError when the checkpoint was written for another model and
    CorruptCheckpointError when it cannot be read, holds non-finite values or fails its digest.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    target = self._replicated(abstract_state)
    try:
      state = self.manager.restore(step, args=ocp.args.StandardRestore(target))
    except (ValueError, KeyError, TypeError) as e:
      msg = str(e).splitlines()[0] if str(e) else type(e).__name__
      if self._readable_structure(step, target):
        raise IncompatibleCheckpointError(
          f"checkpoint {step} in {self.directory} does not fit this model and optimizer: {msg}"
        ) from None
      raise CorruptCheckpointError(f"cannot be read ({msg[:200]})") from None
    except Exception as e:  # TensorStore / OS errors on damaged files
      msg = str(e).splitlines()[0] if str(e) else type(e).__name__
      raise CorruptCheckpointError(f"cannot be read ({type(e).__name__}: {msg[:200]})") from None
    if verify:
      if not _all_finite(state):
        raise CorruptCheckpointError("holds non-finite values")
      expected = self._digests().get(str(step), {}).get("state")
      if expected is not None and state_digest(state) != expected:
        raise CorruptCheckpointError("its bytes do not match the digest written at save time")
    return state

  def restore_ema(self, abstract_params: Any, step: int, verify: bool = True) -> Any:
    """Only the EMA parameters of checkpoint `step` (no raw parameters, no optimizer moments)."""
    target = self._replicated({"ema_params": abstract_params})
    try:
      out = self.manager.restore(
        step,
        args=ocp.args.PyTreeRestore(
          item=target,
          restore_args=ocp.checkpoint_utils.construct_restore_args(target),
          partial_restore=True,
        ),
      )
    except (ValueError, KeyError, TypeError) as e:
      msg = str(e).splitlines()[0] if str(e) else type(e).__name__
      if self._readable_structure(step, target):
        raise IncompatibleCheckpointError(
          f"checkpoint {step} in {self.directory} does not fit this model: {msg}"
        ) from None
      raise CorruptCheckpointError(f"cannot be read ({msg[:200]})") from None
    except Exception as e:  # TensorStore / OS errors on damaged files
      msg = str(e).splitlines()[0] if str(e) else type(e).__name__
      raise CorruptCheckpointError(f"cannot be read ({type(e).__name__}: {msg[:200]})") from None
    params = out["ema_params"]
    if verify:
      if not _all_finite(params):
        raise CorruptCheckpointError("holds non-finite values")
      expected = self._digests().get(str(step), {}).get("ema_params")
      if expected is not None and state_digest(params) != expected:
        raise CorruptCheckpointError("its bytes do not match the digest written at save time")
    return params

  def _readable_structure(self, step: int, target: Any) -> bool:
    """True when the step's metadata reads and describes another tree than `target` (the
    checkpoint belongs to another model); False when it cannot be read or matches (damage)."""
    try:
      meta = self.manager.item_metadata(step)
      meta = getattr(meta, "tree", meta)
      if meta is None or not jax.tree.leaves(meta):
        return False
      shapes = lambda t: sorted(str(tuple(getattr(v, "shape", ()))) for v in jax.tree.leaves(t))
      want = target if isinstance(target, dict) else flax_state_dict(target)
      if isinstance(target, dict) and isinstance(meta, dict):  # a partial restore
        meta = {k: meta.get(k) for k in target}
      return _keys(meta) != _keys(want) or shapes(meta) != shapes(want)
    except Exception:  # noqa: BLE001 - any failure to read metadata means damage
      return False

  def restore_latest(
    self, abstract_state: Any, log: Callable[[str], None] = print
  ) -> Tuple[Optional[Any], Optional[int]]:
    """(state, step) of the newest checkpoint that verifies, or (None, None) if there is none.

    Each checkpoint that fails verification is moved aside with a one-line message.
    """
    return self._latest(lambda step: self.restore(abstract_state, step), log)

  def restore_latest_ema(
    self, abstract_params: Any, log: Callable[[str], None] = print
  ) -> Tuple[Optional[Any], Optional[int]]:
    """`restore_latest` for the EMA parameters only."""
    return self._latest(lambda step: self.restore_ema(abstract_params, step), log)

  def _latest(self, restore: Callable, log: Callable[[str], None]):
    while True:
      step = self.latest_step()
      if step is None:
        return None, None
      try:
        return restore(step), step
      except CorruptCheckpointError as e:
        dest = self._move_aside(step)
        prev = [s for s in self.all_steps() if s < step]
        then = f"resuming from step {prev[-1]}" if prev else "no earlier checkpoint; starting over"
        log(f"checkpoint {step} is corrupt ({e}); moved it to {dest}; {then}")

  def _move_aside(self, step: int) -> str:
    src = os.path.join(self.directory, str(step))
    dest = os.path.join(self.corrupt_directory, f"{step}")
    if jax.process_index() == 0:
      os.makedirs(self.corrupt_directory, exist_ok=True)
      if os.path.exists(dest):
        dest = f"{dest}.{int(time.time())}"
      if os.path.exists(src):
        shutil.move(src, dest)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils

      multihost_utils.sync_global_devices(f"score_sde_move_aside_{step}")
    # orbax caches the step list; start a fresh manager that sees the directory as it is now.
    self.manager.close()
    self.manager = ocp.CheckpointManager(self.directory, options=self._options)
    return dest

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def read_run_record(workdir: str) -> Optional[dict]:
  path = os.path.join(workdir, "run.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _model_field_defaults(name) -> dict:
  """The defaults of config.model's fields and of network `name`'s hyperparameters, as stored."""
  from score_sde.config_defaults import get_default_config
  from score_sde.models.registry import MODELS

  defaults = {}
  cls = MODELS.get(name) if isinstance(name, str) else None
  if cls is not None and dataclasses.is_dataclass(cls):
    for f in dataclasses.fields(cls):
      if f.init and f.default is not dataclasses.MISSING:
        defaults[f.name] = f.default
  defaults.update(get_default_config().model.to_dict())
  return json.loads(json.dumps(defaults, default=repr))


def _with_added_model_fields(old: dict, record: dict) -> dict:
  """`old` with the model fields it lacks filled in from `record` when `record` holds the field's
  default (config.model's, or the network's own, such as a small U-Net config that newly sets
  `dropout = 0.0`): a run recorded by an earlier version or config still resumes and samples
  when those fields keep their old behaviour."""
  old_model, new_model = old.get("model"), record.get("model")
  if not isinstance(old_model, dict) or not isinstance(new_model, dict):
    return old
  defaults = _model_field_defaults(new_model.get("name"))
  added = {
    k: v for k, v in new_model.items() if k not in old_model and k in defaults and defaults[k] == v
  }
  return {**old, "model": {**old_model, **added}} if added else old


def check_run_record(workdir: str, record: dict, write: bool = True) -> None:
  """Fails if `workdir/run.json` exists and differs from `record`; with `write`, writes it if absent.

  The runners compare first (`write=False`) and write the record only once a checkpoint exists,
  so a failed run leaves none behind.
  """
  record = json.loads(json.dumps(record))  # as stored: tuples in the config become lists
  old = read_run_record(workdir)
  if old is not None:
    old = _with_added_model_fields(old, record)
    diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
    if diff:
      details = "; ".join(
        f"{k}: checkpoint has {old.get(k)!r}, config has {record.get(k)!r}" for k in diff
      )
      raise IncompatibleCheckpointError(
        f"workdir {workdir} holds a checkpoint of an incompatible model ({details}); "
        f"use a new --workdir"
      )
    return
  if write and jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    tmp = os.path.join(workdir, "run.json.tmp")
    with open(tmp, "w") as f:
      json.dump(record, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(workdir, "run.json"))
