"""experiments/reproduce_digits.py: its `--set` overrides reach the config with their types, an
unknown field fails, and every config it names loads and validates (no compilation, no training)."""

import os

import jax
import pytest
from conftest import load_experiment

from score_sde import runner_utils as ru

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_overrides_are_typed_and_checked():
  rd = load_experiment("reproduce_digits")
  config = ru.load_config(os.path.join(REPO, rd.CONFIGS["subvp"]))
  rd.apply_overrides(
    config,
    ["model.preconditioning=edm", "training.loss=edm", "optim.lr=2e-3", "model.ch_mult=(1, 2, 2)"],
  )
  assert config.model.preconditioning == "edm" and config.training.loss == "edm"
  assert config.optim.lr == 2e-3 and tuple(config.model.ch_mult) == (1, 2, 2)
  with pytest.raises(KeyError, match="no field 'optim.learning_rate'"):
    rd.apply_overrides(config, ["optim.learning_rate=1e-3"])


@pytest.mark.parametrize("name", ["vp", "subvp", "ve", "vp_small_unet"])
def test_every_config_validates(name):
  rd = load_experiment("reproduce_digits")
  ru.validate_config(ru.load_config(os.path.join(REPO, rd.CONFIGS[name])), jax.device_count())
