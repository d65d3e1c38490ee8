"""Checkpoints with orbax: periodic and preemption snapshots in `workdir/checkpoints`, keep the last k.

orbax writes each step to a temporary directory and renames it when complete, so a crash or a
SIGKILL mid-save leaves the previous checkpoint intact. The run's model and data settings are kept
beside the checkpoints (`run.json`) so that restarting with an incompatible config fails with a
clear message instead of an opaque shape error.
"""
import json
import os
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


class IncompatibleCheckpointError(ValueError):
  pass


class Checkpointer:
  """Save / restore a TrainState pytree under `workdir/checkpoints/<step>`."""

  def __init__(self, workdir: str, max_to_keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def all_steps(self):
    return list(self.manager.all_steps())

  def save(self, step: int, state: Any) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, abstract_state: Any, step: Optional[int] = None) -> Any:
    """Restores `step` (default latest) into the structure, shapes and shardings of `abstract_state`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    # Leaves without a sharding are restored replicated over this process's devices, so that a
    # checkpoint written on N devices loads on any other number (orbax would reuse the saved one).
    repl = NamedSharding(Mesh(np.asarray(jax.devices()), ("data",)), P())
    abstract_state = jax.tree.map(
        lambda v: v if getattr(v, "sharding", None) is not None
        else jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=repl), abstract_state)
    try:
      return self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    except (ValueError, KeyError, TypeError) as e:
      raise IncompatibleCheckpointError(
          f"checkpoint {step} in {self.directory} does not fit this model and optimizer: {str(e).splitlines()[0]}") from None

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def check_run_record(workdir: str, record: dict) -> None:
  """Writes `workdir/run.json` on the first run; on later runs fails if the model or data differ."""
  record = json.loads(json.dumps(record))  # as stored: tuples in the config become lists
  path = os.path.join(workdir, "run.json")
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
    if diff:
      details = "; ".join(f"{k}: checkpoint has {old.get(k)!r}, config has {record.get(k)!r}" for k in diff)
      raise IncompatibleCheckpointError(
          f"workdir {workdir} holds a checkpoint of an incompatible model ({details}); use a new --workdir")
    return
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(path, "w") as f:
      json.dump(record, f, indent=1, sort_keys=True)
