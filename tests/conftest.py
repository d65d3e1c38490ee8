"""Test setup: 8 forced host devices (for the multi-device tests) before jax is imported, and one
small toy model trained once per session for the tests that need a checkpoint."""

import atexit
import importlib.util
import os
import shutil
import tempfile
from typing import NamedTuple

_flag = "--xla_force_host_platform_device_count=8"
if _flag not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()

# One persistent compilation cache per test process, inherited by the processes it starts (CLI
# runs, notebook kernels): a run started again (kill and resume, a second CLI call) loads its
# compiled programs instead of compiling them again. Every program is cached, however fast it
# compiled, and the cache goes with the process.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="score_sde_test_jax_cache_")
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import jax  # noqa: E402
import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY_CONFIG = os.path.join(REPO, "configs", "toy", "vp_eight_gaussians.py")

# The shared toy run: the eight-Gaussians VP config with a small MLP, 20 steps on the 8 forced
# devices (seconds). The run record fixes model and data, so whoever loads the checkpoint (also
# through the CLI) passes these same overrides.
TOY_OVERRIDES = {
  "model.hidden": 32,
  "model.num_layers": 1,
  "training.batch_size": 64,
  "training.n_iters": 20,
  "training.n_jitted_steps": 10,
  "training.log_freq": 10,
  "training.snapshot_freq": 10,
  "training.sample_at_end": False,
}


def toy_config(extra=None):
  """The toy config with TOY_OVERRIDES and `extra` ("section.field" -> value) on top: tests that
  train their own small run use it, so their programs are the session toy run's (compiled once,
  then read from the session's compilation cache)."""
  from score_sde import runner_utils as ru

  config = ru.load_config(TOY_CONFIG)
  for path, value in {**TOY_OVERRIDES, **(extra or {})}.items():
    section, field = path.split(".")
    setattr(config[section], field, value)
  return config


def load_experiment(name: str):
  """The script experiments/<name>.py as a module (experiments/ is not a package), for tests of
  its helpers that run no experiment."""
  path = os.path.join(REPO, "experiments", f"{name}.py")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


class ToyRun(NamedTuple):
  """A trained toy workdir (checkpoints at steps 10 and 20) and the overrides that made it."""

  workdir: str
  overrides: dict

  def config(self, extra=None):
    """The run's config, with `extra` ("section.field" -> value) set on top."""
    return toy_config({**self.overrides, **(extra or {})})


@pytest.fixture(scope="session")
def _toy_run_once(tmp_path_factory):
  from score_sde.train import train

  run = ToyRun(str(tmp_path_factory.mktemp("toy_run")), dict(TOY_OVERRIDES))
  train(run.config(), run.workdir)
  return run


@pytest.fixture(scope="module")
def toy_run(_toy_run_once, tmp_path_factory):
  """The session's trained toy run, copied for each test module (they write outputs beside it)."""
  workdir = str(tmp_path_factory.mktemp("toy_run_copy") / "run")
  shutil.copytree(_toy_run_once.workdir, workdir)
  return _toy_run_once._replace(workdir=workdir)


@pytest.fixture
def x64():
  """Runs a test in float64 (where exactness matters), restoring float32 afterwards."""
  jax.config.update("jax_enable_x64", True)
  try:
    yield
  finally:
    jax.config.update("jax_enable_x64", False)
