"""Every bad input is refused before compute by one error naming the field or file and what is
allowed (score_sde/validate.py); the command line turns it into one line and exit code 2."""

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from score_sde import runner_utils as ru
from score_sde.validate import ConfigError, validate, validate_workdir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(REPO, "configs", "toy", "vp_eight_gaussians.py")


def toy(**overrides):
  config = ru.load_config(TOY)
  for path, value in overrides.items():
    section, field = path.split(".")
    config[section][field] = value
  return config


@pytest.mark.parametrize(
  "field,value,allowed",
  [
    # The "accepted silently" list.
    ("sampling.rtol", -1.0, "must be > 0"),
    ("training.ema_rate", 2.0, r"must be in \[0, 1\)"),
    ("optim.lr", -1.0, "must be > 0"),
    ("training.n_iters", 0, "must be >= 1"),
    # ZeroDivisionError after compilation before.
    ("training.snapshot_freq", 0, "must be >= 1"),
    ("training.log_freq", 0, "must be >= 1"),
    # "not divisible by the 1 devices" before.
    ("training.batch_size", 0, "must be >= 1"),
    ("training.keep_checkpoints", 0, "must be >= 1"),
    ("eval.rtol", 0.0, "must be > 0"),
    ("sampling.eps", 1.5, r"must be in \(0, 1\)"),
    ("eval.bpd_dataset", "valid", r"choose from \['test', 'train'\]"),
  ],
)
def test_out_of_range_values_name_the_field_and_the_allowed_range(field, value, allowed):
  with pytest.raises(ConfigError, match=rf"^config\.{field}={value!r}: {allowed}"):
    validate(toy(**{field: value}))


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("sampling.method", "euler", r"config\.sampling\.method: unknown sampling method 'euler'"),
    (
      "sampling.predictor",
      "ancestral",
      r"config\.sampling\.predictor: unknown predictor 'ancestral'; choose from \[.*'euler_maruyama'",
    ),
    ("sampling.corrector", "lang", r"config\.sampling\.corrector: unknown corrector 'lang'"),
    ("sampling.ode_method", "rk5", r"config\.sampling\.ode_method: unknown ODE solver 'rk5'"),
    ("sde.name", "vp", r"config\.sde\.name: unknown SDE 'vp'"),
    ("data.name", "cifar", r"config\.data\.name: unknown dataset 'cifar'"),
    ("optim.optimizer", "sgd", r"config\.optim\.optimizer: unknown optimizer 'sgd'"),
  ],
)
def test_unknown_names_fail_in_train_mode_before_training(field, value, message):
  """Sampler names were found only after training before; now in validate(config, 'train')."""
  with pytest.raises(ConfigError, match=message):
    validate(toy(**{field: value}), "train")


def test_sampler_combinations_are_checked_by_the_sampler():
  """A fixed-step ODE solver without a step count: the sampler's own rule, before compute."""
  with pytest.raises(ConfigError, match="fixed-step"):
    validate(
      toy(**{"sampling.method": "ode", "sampling.ode_method": "rk4", "sampling.num_steps": 0}),
      "sample",
    )


def test_unknown_and_mistyped_fields():
  config = toy()
  with config.unlocked():
    config.training.batchsize = 3
  with pytest.raises(
    ConfigError,
    match=r"config\.training\.batchsize is not a config field; "
    r"config\.training has fields \[.*'batch_size'",
  ):
    validate(config)
  config = toy()
  with config.unlocked():
    del config.training["ema_rate"]  # a config file not built on the shared defaults
  with pytest.raises(ConfigError, match=r"config\.training\.ema_rate is missing"):
    validate(config)


def test_num_steps_zero_means_the_samplers_default():
  config = toy(**{"sampling.method": "ode", "sampling.num_steps": 0})
  validate(config, "sample")
  assert config.sampling.num_steps is None  # adaptive tsit5, not the config file's 500 steps


def test_paper_sample_counts_are_accepted_in_every_mode():
  """50,000 samples in batches of 1024: the last batch is drawn whole and cut."""
  config = toy(
    **{
      "sampling.num_samples": 50,
      "sampling.batch_size": 32,
      "eval.num_samples": 50,
      "eval.batch_size": 32,
    }
  )
  for mode in ("sample", "train", "eval"):
    validate(config, mode)


def test_eval_checkpoint_range():
  config = toy(**{"eval.begin_ckpt": 20, "eval.end_ckpt": 10})
  with pytest.raises(ConfigError, match=r"config\.eval\.end_ckpt=10: must be >= eval.begin_ckpt"):
    validate(config, "eval")


def test_workdir_checks(tmp_path):
  config = toy()
  afile = tmp_path / "afile"
  afile.write_text("x")
  with pytest.raises(ConfigError, match="is a file, not a directory"):
    validate_workdir(config, str(afile), "train")
  with pytest.raises(ConfigError, match="is a file, not a directory"):
    validate_workdir(config, str(afile / "sub"), "train")
  workdir = tmp_path / "run"
  validate_workdir(config, str(workdir), "train")  # made by training
  with pytest.raises(ConfigError, match="no checkpoint in .*; train first"):
    validate_workdir(config, str(workdir), "sample")
  (workdir / "checkpoints" / "20").mkdir(parents=True)
  (workdir / "checkpoints" / "40.orbax-checkpoint-tmp-1").mkdir()  # unfinished save
  validate_workdir(config, str(workdir), "eval")
  config.eval.checkpoint = 40  # "Must provide args of type Composite" before
  with pytest.raises(
    ConfigError,
    match=r"config\.eval\.checkpoint=40: no such checkpoint in "
    r".*; choose from \[20\]",
  ):
    validate_workdir(config, str(workdir), "sample")


def _png(rng) -> bytes:
  from PIL import Image

  buf = io.BytesIO()
  Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buf, format="PNG")
  return buf.getvalue()


@pytest.mark.parametrize("bad", ["text", "truncated", "damaged"])
def test_image_folder_with_an_unreadable_file_names_it(tmp_path, bad):
  rng = np.random.default_rng(0)
  for i in range(3):
    (tmp_path / f"ok{i}.png").write_bytes(_png(rng))
  data = _png(rng)
  if bad == "text":
    data = b"not an image"
  elif bad == "truncated":
    data = data[: len(data) // 2]
  else:
    data = data[:60] + b"x" * 10 + data[70:]  # inside IDAT: its checksum fails
  (tmp_path / "sub").mkdir()
  (tmp_path / "sub" / "bad.png").write_bytes(data)
  config = toy(
    **{"data.name": "image_folder", "data.data_dir": str(tmp_path), "data.num_channels": 3}
  )
  with pytest.raises(ValueError, match=r"'sub/bad\.png' is not a readable image"):
    validate(config, "train")


def _cli(*args, cwd=REPO):
  cmd = [sys.executable, "-m", "score_sde.main", *args]
  return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_config_file_errors_are_one_line_with_exit_code_2(tmp_path):
  """These fail while the flags are parsed: no JAX import, well under a second each."""
  syntax = tmp_path / "syntax.py"
  syntax.write_text("def get_config(:\n")
  raises = tmp_path / "raises.py"
  raises.write_text("def get_config():\n  raise RuntimeError('no such preset')\n")
  cases = [
    ([f"--config={tmp_path}/missing.py"], "config file '.*missing.py' does not exist"),
    ([f"--config={syntax}"], r"config file .*syntax.py line 1: invalid syntax"),
    ([f"--config={raises}"], r"raises.py: get_config\(\) raised RuntimeError: no such preset"),
    (
      [f"--config={TOY}", "--config.training.batchsize=3"],
      r"config.training has no field 'batchsize'; did you mean 'batch_size'\?",
    ),
    ([f"--config={TOY}", "--config.sampling.num_steps=None"], "num_steps=None"),
    # `hidden` is a field of the toy config's model, not of the defaults: the message names the
    # override that is unknown, not the first one absent from the defaults.
    (
      [f"--config={TOY}", "--config.model.hidden=8", "--config.model.dropout=0.1"],
      r"--config.model.dropout=0.1: the config's model has no field 'dropout'",
    ),
  ]
  for args, message in cases:
    out = _cli(*args, f"--workdir={tmp_path}/w")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert re.search(message, lines[0]), lines[0]


def test_cli_bad_value_one_line_and_traceback_only_with_verbose(tmp_path):
  out = _cli(f"--config={TOY}", f"--workdir={tmp_path}", "--config.training.ema_rate=2.0")
  assert out.returncode == 2
  assert out.stderr.strip().splitlines() == [
    "error: config.training.ema_rate=2.0: must be in [0, 1)"
  ]
  assert not os.listdir(tmp_path)  # nothing written
  out = _cli(
    f"--config={TOY}", f"--workdir={tmp_path}", "--config.training.ema_rate=2.0", "--verbose"
  )
  assert out.returncode == 2 and "Traceback (most recent call last)" in out.stderr


def test_print_config_lists_every_field():
  out = _cli(f"--config={TOY}", "--print_config", "--config.sampling.num_steps=7")
  assert out.returncode == 0, out.stderr
  assert "num_steps: 7" in out.stdout and "ema_rate:" in out.stdout and "hidden: 128" in out.stdout


def test_validation_starts_no_backend(monkeypatch):
  # jax.distributed.initialize (multi-process runs) must come before the backend starts, and the
  # CLI validates first: any device query or array computed while validating fails here.
  from jax._src import xla_bridge

  def started(*args, **kwargs):
    raise AssertionError("validation touched the JAX backend")

  monkeypatch.setattr(xla_bridge, "get_backend", started)
  monkeypatch.setattr(xla_bridge, "local_devices", started)
  for name in ("toy/vp_eight_gaussians.py", "digits/ve_ncsnpp.py", "vp/cifar10_ddpmpp.py"):
    config = ru.load_config(os.path.join(REPO, "configs", name))
    for mode in ("train", "sample", "eval"):
      validate(config, mode, check_data=False)
