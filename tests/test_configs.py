"""Every config under configs/ loads, validates, builds its network and sampler; the paper's
CIFAR-10 and high-resolution configs have exactly the reference implementation's parameter counts
(counted abstractly with jax.eval_shape: nothing paper-sized is allocated)."""

import glob
import os
import sys

import jax
import pytest

from score_sde import runner_utils as ru
from score_sde.sampling import sampler_from_config
from score_sde.validate import validate

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
CONFIGS = sorted(
  os.path.relpath(p, ROOT)
  for p in glob.glob(os.path.join(ROOT, "**", "*.py"), recursive=True)
  if "def get_config" in open(p).read()
)

# Issue 5: parameter counts of the reference implementation.
REFERENCE_COUNTS = {
  "vp/cifar10_ddpm.py": 35_218_947,
  "vp/cifar10_ddpmpp_continuous.py": 61_804_419,
  "vp/cifar10_ddpmpp_deep_continuous.py": 106_632_579,
  "vp/cifar10_ncsnpp_continuous.py": 62_693_251,
  "vp/cifar10_ncsnpp_deep_continuous.py": 107_521_411,
  "subvp/cifar10_ncsnpp_continuous.py": 62_693_251,
  "ve/cifar10_ncsnpp_continuous.py": 62_758_915,
  "ve/cifar10_ncsnpp_deep_continuous.py": 107_587_075,
  "ve/celebahq_256_ncsnpp_continuous.py": 65_574_549,
  "ve/ffhq_ncsnpp_continuous.py": 105_785_896,
  "vp/church_ddpm.py": 111_569_923,
}

# The release's families (issue 5, item 2).
REQUIRED = [
  "vp/cifar10_ddpm.py",
  "vp/cifar10_ddpmpp.py",
  "vp/cifar10_ddpmpp_continuous.py",
  "vp/cifar10_ddpmpp_deep_continuous.py",
  "vp/cifar10_ncsnpp.py",
  "vp/cifar10_ncsnpp_continuous.py",
  "vp/cifar10_ncsnpp_deep_continuous.py",
  "vp/bedroom_ddpm.py",
  "vp/church_ddpm.py",
  "vp/celebahq_ddpm.py",
  "ve/cifar10_ncsnpp.py",
  "ve/cifar10_ncsnpp_continuous.py",
  "ve/cifar10_ncsnpp_deep_continuous.py",
  "ve/celeba_ncsnpp.py",
  "ve/celebahq_256_ncsnpp_continuous.py",
  "ve/celebahq_ncsnpp_continuous.py",
  "ve/ffhq_256_ncsnpp_continuous.py",
  "ve/ffhq_ncsnpp_continuous.py",
  "ve/bedroom_ncsnpp_continuous.py",
  "ve/church_ncsnpp_continuous.py",
  "ve/ncsn/cifar10.py",
  "ve/ncsnv2/cifar10.py",
  "ve/ncsnv2/celeba.py",
  "ve/ncsnv2/bedroom.py",
  "subvp/cifar10_ddpm_continuous.py",
  "subvp/cifar10_ddpmpp_continuous.py",
  "subvp/cifar10_ddpmpp_deep_continuous.py",
  "subvp/cifar10_ncsnpp_continuous.py",
  "subvp/cifar10_ncsnpp_deep_continuous.py",
]


def test_config_flags_loads_a_paper_config_from_any_directory(tmp_path, monkeypatch):
  """--config loads a config by file path (ml_collections.config_flags); the shared paper settings
  come from the package, so no config edits sys.path and the working directory does not matter."""
  from absl import flags
  from ml_collections import config_flags

  monkeypatch.chdir(tmp_path)
  path_before = list(sys.path)
  for name, model in (("ve/ncsn/cifar10.py", "ncsn"), ("toy/vp_eight_gaussians.py", "mlp")):
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "", flag_values=fv)
    fv(["prog", f"--config={os.path.join(ROOT, name)}"])
    assert fv.config.model.name == model
  assert sys.path == path_before
  for name in CONFIGS:
    with open(os.path.join(ROOT, name)) as f:
      assert "sys.path" not in f.read(), name


def _load(name):
  return ru.load_config(os.path.join(ROOT, name))


def _param_count(config) -> int:
  network = ru.build_network(config)
  shape = (config.data.image_size, config.data.image_size, config.data.num_channels)
  params = jax.eval_shape(lambda k: ru.init_params(config, network, k, shape), jax.random.key(0))
  return sum(p.size for p in jax.tree.leaves(params))


def test_every_release_family_has_a_config():
  missing = sorted(set(REQUIRED) - set(CONFIGS))
  assert not missing
  assert any(c.startswith("digits/") and _load(c).model.name == "ncsnpp" for c in CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates_and_builds(name):
  config = _load(name)
  ru.validate_config(config, num_devices=1)
  validate(config, "train", check_data=False)  # no data sets are prepared here
  sde = ru.build_sde(config)
  sampler_from_config(config.sampling, sde)
  ru.build_network(config)
  if (
    config.data.name not in ("eight_gaussians", "checkerboard", "swiss_roll")
    and "centered" in config.model
    and config.model.get("preconditioning", "none") == "none"
  ):
    # The network's own [0, 1] -> [-1, 1] map must agree with the data's range (a preconditioned
    # network sees c_in x instead, whose range is not the data's).
    assert config.model.centered == config.data.centered
  if config.model.name == "ncsn":
    # One conditional-norm row per noise level of the SDE.
    assert (config.model.num_scales, config.model.sigma_max) == (
      config.sde.num_scales,
      config.sde.sigma_max,
    )


# Configs whose network is another's, field for field: the count is checked on that one.
SAME_NETWORK = {"subvp/cifar10_ncsnpp_continuous.py": "vp/cifar10_ncsnpp_continuous.py"}


@pytest.mark.parametrize("name", sorted(set(REFERENCE_COUNTS) - set(SAME_NETWORK)))
def test_reference_parameter_counts(name):
  assert _param_count(_load(name)) == REFERENCE_COUNTS[name]


@pytest.mark.parametrize("name", sorted(SAME_NETWORK))
def test_configs_with_the_same_network_have_the_same_count(name):
  """The same network (model name and hyperparameters, as build_network gets them) on the same
  input shape: the parameter count is the other config's (counted above)."""
  other = SAME_NETWORK[name]
  assert REFERENCE_COUNTS[name] == REFERENCE_COUNTS[other]
  a, b = _load(name), _load(other)
  assert a.model.name == b.model.name
  assert ru.network_kwargs(a) == ru.network_kwargs(b)
  shape = lambda c: (c.data.image_size, c.data.image_size, c.data.num_channels)
  assert shape(a) == shape(b)


def test_discrete_configs_use_the_papers_losses():
  assert _load("vp/cifar10_ddpm.py").training.loss == "ddpm"
  assert _load("ve/cifar10_ncsnpp.py").training.loss == "smld"
  assert _load("ve/ncsn/cifar10.py").training.loss == "smld"
  assert _load("vp/cifar10_ddpmpp_continuous.py").training.loss == "dsm"


@pytest.mark.parametrize("name", [c for c in CONFIGS if c.split("/")[0] in ("ve", "vp", "subvp")])
def test_paper_configs_sample_to_the_releases_eps(name):
  """The release's sampling cut-off: t = 1e-5 for VE, 1e-3 for VP and sub-VP (issue 11, item 4)."""
  config = _load(name)
  assert config.sampling.eps == (1e-5 if config.sde.name == "vesde" else 1e-3)


def test_ncsn_levels_follow_sde_overrides():
  config = _load("ve/ncsn/cifar10_124.py")
  config.sde.num_scales = 100
  assert config.model.num_scales == 100
  config.data.centered = True
  assert config.model.centered


DISCRETE_VE = [c for c in CONFIGS if c.startswith("ve/") and _load(c).training.loss == "smld"]


def test_discrete_ve_configs_are_the_papers():
  assert {
    "ve/cifar10_ncsnpp.py",
    "ve/celeba_ncsnpp.py",
    "ve/cifar10_ddpm.py",
    "ve/ncsn/cifar10.py",
    "ve/ncsnv2/cifar10.py",
    "ve/ncsnv2/bedroom.py",
  } <= set(DISCRETE_VE)


@pytest.mark.parametrize("name", DISCRETE_VE)
def test_discrete_ve_networks_get_the_level_index_and_the_sdes_sigma_table(name):
  """Issue 11, deviation 1: through the score function the runners build, a discretely trained
  VE network sees the release's level index, int32 0 at t = T and N - 1 at t = sampling.eps, and
  holds the SDE's sigma table to read sigma_k from it."""
  import jax.numpy as jnp
  import numpy as np

  from score_sde.models import utils as mutils

  config = _load(name)
  network, sde = ru.build_network(config), ru.build_sde(config)
  table = (network.sigma_min, network.sigma_max, network.num_scales)
  assert table == (config.sde.sigma_min, config.sde.sigma_max, config.sde.num_scales)
  seen = []

  def spy(x, label):
    seen.append(label)
    return jnp.zeros_like(x)

  score_fn = mutils.score_fn_from_model(
    spy, sde, config.model.target, discrete=ru.is_discrete(config)
  )
  score_fn(jnp.zeros((2, 4)), jnp.array([sde.T, config.sampling.eps]))
  assert seen[0].dtype == jnp.int32
  np.testing.assert_array_equal(seen[0], [0, sde.N - 1])


@pytest.mark.parametrize("name", ["ve/cifar10_ncsnpp_continuous.py", "digits/ve_ncsnpp.py"])
def test_continuous_ve_networks_keep_sigma_labels(name):
  import jax.numpy as jnp
  import numpy as np

  from score_sde.models import utils as mutils

  config = _load(name)
  network, sde = ru.build_network(config), ru.build_sde(config)
  assert (network.sigma_min, network.sigma_max, network.num_scales) == (None, None, None)
  t = jnp.array([sde.T, config.sampling.eps])
  label = mutils.noise_label(sde, t, ru.is_discrete(config))
  assert label.dtype == jnp.float32
  np.testing.assert_allclose(
    label, [config.sde.sigma_max, sde.sigma(config.sampling.eps)], rtol=1e-6
  )


def test_a_network_table_other_than_the_sdes_is_refused():
  config = _load("ve/cifar10_ncsnpp.py")
  config.model.num_scales = 10
  with pytest.raises(ValueError, match="config.sde.num_scales"):
    ru.build_network(config)
