"""Importing the 2021 release's checkpoints (PyTorch port and JAX release) into our networks.

Each test builds a checkpoint in the release's layout from random weights: tensor names and
shapes from `score_sde.release_layout` (the release's module order, per family), values that
encode the tensor's index so that the import can be checked to use every tensor exactly once.
PyTorch is not a dependency, so the PyTorch path is tested on the in-memory state dict (what
torch.load returns, with numpy arrays for tensors); the JAX path goes through real msgpack files.
"""

import glob
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization
from flax.traverse_util import flatten_dict

from score_sde import import_checkpoint as ic, runner_utils as ru

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VE_NCSNPP = os.path.join(REPO, "configs", "digits", "ve_ncsnpp.py")
VP_DDPMPP = os.path.join(REPO, "configs", "digits", "vp_ddpmpp.py")
SUBVP_DDPM = os.path.join(REPO, "configs", "digits", "subvp_ddpm.py")
# The digits VE config trains NCSN++ under EDM's preconditioning with EDM's loss; the release's VE
# NCSN++ (Fourier embedding of log sigma, output / sigma, inputs mapped to [-1, 1]) is that config
# with these model fields, the release's objective (RELEASE_VE_LOSS) and its data in [0, 1] with
# sigma_max 8 (the digits config centres them, with sigma_max 16).
RELEASE_VE = dict(
  preconditioning="none", embedding_type="fourier", scale_by_sigma=True, centered=False
)
RELEASE_VE_LOSS = "dsm"
RELEASE_VE_FLAGS = ("--config.data.centered=False", "--config.sde.sigma_max=8.0")
NCSN = os.path.join(REPO, "configs", "ve", "ncsn", "cifar10.py")
NCSNV2 = os.path.join(REPO, "configs", "ve", "ncsnv2", "cifar10.py")
NCSNV2_BEDROOM = os.path.join(REPO, "configs", "ve", "ncsnv2", "bedroom.py")

# (config file, model overrides): every family and every resampling / pyramid path of NCSN++.
FAMILIES = {
  "ncsnpp_fir_residual_input": (VE_NCSNPP, dict(nf=8)),
  "ncsnpp_output_skip_input_skip_cat": (
    VE_NCSNPP,
    dict(
      nf=8, progressive="output_skip", progressive_input="input_skip", progressive_combine="cat"
    ),
  ),
  "ncsnpp_ddpm_blocks_fir_residual": (
    VE_NCSNPP,
    dict(
      nf=8,
      resblock_type="ddpm",
      progressive="residual",
      progressive_input="input_skip",
      progressive_combine="sum",
    ),
  ),
  "ncsnpp_ddpm_blocks_no_fir": (
    VE_NCSNPP,
    dict(
      nf=8, resblock_type="ddpm", fir=False, progressive="residual", progressive_input="residual"
    ),
  ),
  "ddpmpp": (VP_DDPMPP, dict(nf=8)),
  "ddpm": (SUBVP_DDPM, dict()),
  "ncsn": (NCSN, dict(nf=4)),
  "ncsnv2": (NCSNV2, dict(nf=4)),
  "ncsnv2_128px": (NCSNV2_BEDROOM, dict(nf=4)),
  "ncsnv2_256px": (NCSNV2_BEDROOM, dict(nf=4, image_size=256)),
}


def _config(path, image_size=None, **model):
  config = ru.load_config(path)
  if image_size is not None:
    config.data.image_size = image_size
  if path == VE_NCSNPP:
    model = dict(RELEASE_VE, **model)
    config.training.loss = RELEASE_VE_LOSS
    config.data.centered, config.sde.sigma_max = False, 8.0
  for k, v in model.items():
    setattr(config.model, k, v)
  return config


def _tagged(shape, index, rng, scale=0.25):
  """Values in [index, index + scale): floor() recovers which source tensor a value came from."""
  return (index + scale * rng.uniform(size=shape)).astype(np.float32)


def _torch_checkpoint(leaves, seed=0):
  """The PyTorch port's checkpoint dict: model tagged 0..n-1, EMA shadow params tagged n..."""
  rng = np.random.default_rng(seed)
  n = len(leaves)
  model = {
    f"module.{leaf.torch}": _tagged(leaf.torch_shape, i, rng) for i, leaf in enumerate(leaves)
  }
  trainable = [leaf for leaf in leaves if leaf.trainable]
  shadow = [_tagged(leaf.torch_shape, n + i, rng) for i, leaf in enumerate(trainable)]
  return {
    "model": model,
    "ema": {"decay": 0.999, "num_updates": 7, "shadow_params": shadow},
    "optimizer": {},
    "step": 1234,
  }


def _jax_checkpoint(leaves, seed=0, tagged=True):
  """The JAX release's State dict; tagged values as above, or small random weights."""
  rng = np.random.default_rng(seed)
  n = len(leaves)

  def tree(offset):
    out = {}
    for i, leaf in enumerate(leaves):
      node = out
      *parents, name = leaf.jax.split("/")
      for p in parents:
        node = node.setdefault(p, {})
      node[name] = (
        _tagged(leaf.shape, offset + i, rng)
        if tagged
        else (0.05 * rng.normal(size=leaf.shape)).astype(np.float32)
      )
    return out

  return {
    "step": np.int64(77),
    "optimizer": {"target": tree(0), "state": {"step": np.int64(77)}},
    "lr": np.float32(2e-4),
    "model_state": {},
    "ema_rate": np.float32(0.999),
    "params_ema": tree(n),
    "rng": np.zeros(2, np.uint32),
  }


def _leaves(config):
  return ic.network_leaves(config)


def _tags(tree):
  """The set of source indices in a tree; each leaf must come from exactly one source tensor."""
  tags = []
  for path, v in flatten_dict(tree).items():
    t = np.unique(np.floor(np.asarray(v)))
    assert t.size == 1, (path, t)
    tags.append(int(t[0]))
  return tags


def _abstract_tree(config):
  network = ru.build_network(config)
  shape = (config.data.image_size, config.data.image_size, config.data.num_channels)
  abstract = jax.eval_shape(lambda k: ru.init_params(config, network, k, shape), jax.random.key(0))
  return {k: tuple(v.shape) for k, v in flatten_dict(abstract).items()}


def _shapes(tree):
  return {k: tuple(np.shape(v)) for k, v in flatten_dict(tree).items()}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_release_checkpoints_import_every_tensor_once(family, tmp_path):
  """Both releases' layouts of each family import into exactly the config's network."""
  path, model = FAMILIES[family]
  config = _config(path, **model)
  network = _abstract_tree(config)
  leaves = _leaves(config)
  n = len(leaves)

  # PyTorch port: the in-memory checkpoint dict.
  ckpt = _torch_checkpoint(leaves)
  params, ema, step = ic.convert_pytorch(leaves, ckpt, "test.pth")
  assert step == 1234
  assert _shapes(params) == network and _shapes(ema) == network  # same tree, same shapes
  assert sum(v.size for v in jax.tree.leaves(params)) == sum(
    int(np.prod(s)) for s in network.values()
  )
  assert sorted(_tags(params)) == list(range(n))  # every 'model' tensor used exactly once
  # EMA: the shadow parameters, in order, for the trainable tensors; the Fourier projection's W
  # (not trainable, not in shadow_params) from the model.
  fixed = [i for i, leaf in enumerate(leaves) if not leaf.trainable]
  assert sorted(_tags(ema)) == sorted(fixed + list(range(n, n + n - len(fixed))))
  # Layout: PyTorch OIHW -> our HWIO, [out, in] -> [in, out].
  flat = flatten_dict(params)
  for leaf in leaves:
    src = ckpt["model"][f"module.{leaf.torch}"]
    want = {"conv": lambda a: a.transpose(2, 3, 1, 0), "dense": lambda a: a.T}.get(
      leaf.layout, lambda a: a
    )(src)
    np.testing.assert_array_equal(flat[leaf.ours], want)

  # JAX release: a msgpack file of its training State.
  file = tmp_path / "checkpoint_77"
  file.write_bytes(serialization.msgpack_serialize(_jax_checkpoint(leaves)))
  params, ema, step = ic.convert_jax(leaves, ic.read_jax(str(file)), str(file))
  assert step == 77
  assert _shapes(params) == network and _shapes(ema) == network
  assert sorted(_tags(params)) == list(range(n))
  assert sorted(_tags(ema)) == list(range(n, 2 * n))


@pytest.mark.parametrize(
  "name,expected_count",
  [
    ("ve/cifar10_ncsnpp_deep_continuous.py", 107_587_075),
    ("vp/church_ddpm.py", 111_569_923),
    ("ve/ncsnv2/bedroom.py", None),
    ("ve/ncsn/cifar10.py", None),
  ],
)
def test_paper_config_layouts_cover_the_network(name, expected_count):
  """At paper scale (shapes only, via jax.eval_shape): the layout is the network's tree."""
  config = ru.load_config(os.path.join(REPO, "configs", name))
  leaves = _leaves(config)
  if expected_count is not None:  # the reference implementation's count (test_configs.py)
    assert sum(int(np.prod(leaf.shape)) for leaf in leaves) == expected_count
  assert {leaf.ours: leaf.shape for leaf in leaves} == _abstract_tree(config)


def _names(path, **model):
  return [leaf.torch for leaf in _leaves(_config(path, **model))]


def test_pytorch_names_follow_the_releases_assignment_order():
  """Spot checks against the PyTorch port's __init__ methods (their state-dict order, which
  the EMA's shadow_params follow)."""
  # NCSN++ (VE): Fourier W, two Dense, the input conv, then the first BigGAN block in the order
  # GroupNorm_0, Conv_0, Dense_0, GroupNorm_1, Conv_1.
  names = _names(VE_NCSNPP, nf=8)
  assert names[:7] == [
    "all_modules.0.W",
    "all_modules.1.weight",
    "all_modules.1.bias",
    "all_modules.2.weight",
    "all_modules.2.bias",
    "all_modules.3.weight",
    "all_modules.3.bias",
  ]
  assert [n.split(".", 2)[2] for n in names[7:17]] == [
    "GroupNorm_0.weight",
    "GroupNorm_0.bias",
    "Conv_0.weight",
    "Conv_0.bias",
    "Dense_0.weight",
    "Dense_0.bias",
    "GroupNorm_1.weight",
    "GroupNorm_1.bias",
    "Conv_1.weight",
    "Conv_1.bias",
  ]
  # input_skip: the parameter-free FIR pyramid downsampler takes an index, then Combine's 'Conv'.
  names = _names(VE_NCSNPP, nf=8, progressive_input="input_skip")
  combine = [n for n in names if ".Conv.weight" in n]
  idx = int(combine[0].split(".")[1])
  assert not any(n.startswith(f"all_modules.{idx - 1}.") for n in names)
  # DDPM's ResnetBlockDDPM assigns GroupNorm_0, GroupNorm_1, Conv_0, Conv_1, Dense_0, NIN_0.
  names = _names(SUBVP_DDPM)
  block = [n.split(".", 2)[2] for n in names if n.startswith("all_modules.3.")]
  assert block == [
    "GroupNorm_0.weight",
    "GroupNorm_0.bias",
    "GroupNorm_1.weight",
    "GroupNorm_1.bias",
    "Conv_0.weight",
    "Conv_0.bias",
    "Conv_1.weight",
    "Conv_1.bias",
    "Dense_0.weight",
    "Dense_0.bias",
  ]
  # NCSNv2: begin_conv, normalizer, end_conv first; a residual block's normalize1 last.
  names = _names(NCSNV2, nf=4)
  assert names[:8] == [
    "begin_conv.weight",
    "begin_conv.bias",
    "normalizer.alpha",
    "normalizer.gamma",
    "normalizer.beta",
    "end_conv.weight",
    "end_conv.bias",
    "res1.0.conv1.weight",
  ]
  assert [n for n in names if n.startswith("res2.0.")][-3:] == [
    "res2.0.normalize1.alpha",
    "res2.0.normalize1.gamma",
    "res2.0.normalize1.beta",
  ]
  assert "res2.0.conv2.conv.weight" in names and "res2.0.shortcut.conv.weight" in names
  # 256 px: refine31 runs before refine3 but is assigned after it.
  names = _names(NCSNV2_BEDROOM, nf=4, image_size=256)
  firsts = [
    next(i for i, n in enumerate(names) if n.startswith(f"{r}."))
    for r in ("refine1", "refine2", "refine3", "refine31", "refine4", "refine5")
  ]
  assert firsts == sorted(firsts)
  # NCSN: conditional norms are embedding tables; a CondRCUBlock interleaves norm and conv.
  names = _names(NCSN, nf=4)
  i = names.index("refine1.adapt_convs.0.1_1_norm.embed.weight")
  assert names[i + 1] == "refine1.adapt_convs.0.1_1_conv.weight"


def _torch_conv(x, w, b):
  """PyTorch's Conv2d (cross-correlation, NCHW, OIHW, zero padding 1), in numpy float64."""
  n, c, h, wd = x.shape
  o, _, kh, kw = w.shape
  xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
  out = np.zeros((n, o, h, wd))
  for i in range(kh):
    for j in range(kw):
      out += np.einsum("nchw,oc->nohw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
  return out + b[None, :, None, None]


def test_converted_layers_compute_what_the_release_computes():
  """The first convolution and the time-embedding Dense of an imported network equal PyTorch's
  Conv2d / Linear with the checkpoint's tensors (numpy references)."""
  config = _config(VE_NCSNPP, nf=8)
  leaves = _leaves(config)
  ckpt = _torch_checkpoint(leaves, seed=3)
  params, _, _ = ic.convert_pytorch(leaves, ckpt, "test.pth")
  sd = ckpt["model"]
  conv = next(leaf for leaf in leaves if leaf.ours == ("Conv_0", "kernel"))
  idx = conv.torch.split(".")[1]
  w, b = sd[f"module.all_modules.{idx}.weight"], sd[f"module.all_modules.{idx}.bias"]
  x = np.random.default_rng(0).normal(size=(2, 5, 5, w.shape[1])).astype(np.float32)
  ours = nn.Conv(w.shape[0], (3, 3), padding="SAME").apply(
    {"params": params["Conv_0"]}, jnp.asarray(x)
  )
  ref = _torch_conv(x.transpose(0, 3, 1, 2).astype(np.float64), w, b).transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-5, atol=1e-4)
  dense = next(leaf for leaf in leaves if leaf.ours == ("Dense_1", "kernel"))
  idx = dense.torch.split(".")[1]
  w, b = sd[f"module.all_modules.{idx}.weight"], sd[f"module.all_modules.{idx}.bias"]
  t = np.random.default_rng(1).normal(size=(3, w.shape[1])).astype(np.float32)
  ours = nn.Dense(w.shape[0]).apply({"params": params["Dense_1"]}, jnp.asarray(t))
  np.testing.assert_allclose(np.asarray(ours), t.astype(np.float64) @ w.T + b, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Bad files: one-line errors naming the problem.


def _one_line(excinfo):
  msg = str(excinfo.value)
  assert "\n" not in msg
  return msg


def test_checkpoint_of_another_config_is_refused():
  ckpt = _torch_checkpoint(_leaves(_config(VE_NCSNPP, nf=8, num_res_blocks=2)))
  leaves = _leaves(_config(VE_NCSNPP, nf=8))
  with pytest.raises(ic.CheckpointImportError) as e:
    ic.convert_pytorch(leaves, ckpt, "deep.pth")
  assert "does not hold this config's network" in _one_line(e) and "missing" in str(e.value)
  # Same names, other widths: the first mis-shaped tensor is named.
  ckpt = _torch_checkpoint(_leaves(_config(VE_NCSNPP, nf=16)))
  with pytest.raises(
    ic.CheckpointImportError,
    match=r"all_modules\.\d+\.W has shape \(16,\), the network needs \(8,\)",
  ):
    ic.convert_pytorch(leaves, ckpt, "wide.pth")
  # Another family entirely (DDPM++ weights for NCSN++), through the JAX path.
  jckpt = _jax_checkpoint(_leaves(_config(VP_DDPMPP, nf=8)))
  with pytest.raises(ic.CheckpointImportError) as e:
    ic.convert_jax(leaves, jckpt, "checkpoint_1")
  assert "3 tensors missing (GaussianFourierProjection_0/W" in _one_line(e)


def test_missing_ema_entry_is_refused():
  leaves = _leaves(_config(VE_NCSNPP, nf=8))
  ckpt = _torch_checkpoint(leaves)
  del ckpt["ema"]
  with pytest.raises(ic.CheckpointImportError, match="no EMA entry") as e:
    ic.convert_pytorch(leaves, ckpt, "x.pth")
  _one_line(e)
  jckpt = _jax_checkpoint(leaves)
  del jckpt["params_ema"]
  with pytest.raises(ic.CheckpointImportError, match="no EMA entry"):
    ic.convert_jax(leaves, jckpt, "checkpoint_1")
  # An EMA of another network: its shadow list has the wrong length.
  ckpt = _torch_checkpoint(leaves)
  ckpt["ema"]["shadow_params"] = ckpt["ema"]["shadow_params"][:-1]
  with pytest.raises(ic.CheckpointImportError, match="shadow parameters"):
    ic.convert_pytorch(leaves, ckpt, "x.pth")


def test_truncated_file_is_refused(tmp_path):
  leaves = _leaves(_config(VE_NCSNPP, nf=8))
  data = serialization.msgpack_serialize(_jax_checkpoint(leaves))
  file = tmp_path / "checkpoint_5"
  file.write_bytes(data[: len(data) // 2])
  with pytest.raises(ic.CheckpointImportError, match="truncated") as e:
    ic.read_jax(str(file))
  _one_line(e)


def test_pth_without_torch_says_how_to_install(tmp_path):
  try:
    import torch  # noqa: F401
  except ImportError:
    file = tmp_path / "x.pth"
    file.write_bytes(b"\0" * 16)
    with pytest.raises(ic.CheckpointImportError, match=r"score_sde\[torch\]"):
      ic.read_pytorch(str(file))
  else:
    pytest.skip("PyTorch is installed")


# ---------------------------------------------------------------------------------------------
# The command line: import, save, reload and sample.

SMALL = [
  *(f"--config.model.{k}={v}" for k, v in RELEASE_VE.items()),
  f"--config.training.loss={RELEASE_VE_LOSS}",
  *RELEASE_VE_FLAGS,
  "--config.model.nf=8",
  "--config.sampling.corrector=none",
  "--config.sampling.num_steps=3",
  "--config.sampling.num_samples=8",
  "--config.sampling.batch_size=8",
  "--config.sampling.progress_chunks=1",
]


def _cli(*args):
  return subprocess.run(
    [sys.executable, "-m", "score_sde.import_checkpoint", *args],
    cwd=REPO,
    capture_output=True,
    text=True,
    env=dict(os.environ, PYTHONPATH=REPO),
  )


def _small_config():
  config = _config(VE_NCSNPP, nf=8)
  config.sampling.update(
    num_steps=3, num_samples=8, batch_size=8, progress_chunks=1, corrector="none"
  )
  return config


def _write_jax_checkpoint(tmp_path, config):
  ckpt = _jax_checkpoint(_leaves(config), seed=1, tagged=False)
  file = tmp_path / "checkpoint_77"
  file.write_bytes(serialization.msgpack_serialize(ckpt))
  return ckpt, file


def _assert_restores(config, workdir, ckpt):
  """Reload as --mode sample does: the EMA parameters come back bit for bit, at the release step."""
  _, ema, _, _, step = ru.load_ema_model(config, workdir)
  assert step == 77
  want = flatten_dict(ic.convert_jax(_leaves(config), ckpt)[1])
  got = flatten_dict(jax.device_get(ema))
  assert set(got) == set(want)
  for k in want:
    np.testing.assert_array_equal(np.asarray(got[k]), want[k])


def test_import_save_reload(tmp_path):
  config = _small_config()
  ckpt, file = _write_jax_checkpoint(tmp_path, config)
  workdir = str(tmp_path / "run")
  assert ic.import_checkpoint(config, "jax", str(file), workdir) == 77
  _assert_restores(config, workdir, ckpt)
  # A checkpoint of another step beside it would leave sampling on the latest one: refused.
  ckpt["step"] = np.int64(78)
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "checkpoint_78").write_bytes(serialization.msgpack_serialize(ckpt))
  with pytest.raises(ic.CheckpointImportError, match=r"already holds checkpoints at steps \[77\]"):
    ic.import_checkpoint(config, "jax", str(tmp_path / "other" / "checkpoint_78"), workdir)
  # Importing for another network into the same workdir is refused by the run record.
  other = _config(VE_NCSNPP, nf=16)
  (tmp_path / "wide").mkdir()
  _, file16 = _write_jax_checkpoint(tmp_path / "wide", other)
  with pytest.raises(ValueError, match="incompatible model"):
    ic.import_checkpoint(other, "jax", str(file16), workdir)


def test_cli_bad_file_prints_one_line(tmp_path):
  config = _small_config()
  _, file = _write_jax_checkpoint(tmp_path, config)
  bad = tmp_path / "checkpoint_78"
  bad.write_bytes(file.read_bytes()[:1000])
  out = _cli(
    f"--config={VE_NCSNPP}",
    *SMALL,
    "--from=jax",
    f"--checkpoint={bad}",
    f"--workdir={tmp_path / 'run'}",
  )
  assert out.returncode == 1
  lines = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
  assert len(lines) == 1 and "truncated" in lines[0], out.stderr[-2000:]
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_cli_import_then_sample_round_trip(tmp_path):
  """`python -m score_sde.import_checkpoint`, then the sampling runner on the workdir (~1 min)."""
  config = _small_config()
  ckpt, file = _write_jax_checkpoint(tmp_path, config)
  workdir = str(tmp_path / "run")
  out = _cli(
    f"--config={VE_NCSNPP}", *SMALL, "--from=jax", f"--checkpoint={file}", f"--workdir={workdir}"
  )
  assert out.returncode == 0, out.stderr[-3000:]
  assert "imported" in out.stdout
  _assert_restores(config, workdir, ckpt)
  from score_sde import sample_runner

  samples, step = sample_runner.run(config, workdir)
  assert step == 77 and samples.shape == (8, 8, 8, 1) and np.isfinite(samples).all()
  assert glob.glob(os.path.join(workdir, "samples_77*.npz"))


def test_fir_conv_weights_keep_the_plain_layout():
  """The release's fused FIR up-convolution (StyleGAN2's upsample_conv_2d) runs a stride-2
  transposed convolution with the OIHW weight flipped and its in/out axes swapped, then one FIR
  pass; our FIRConv2d with that weight merely transposed to HWIO computes the same (numpy
  scatter reference for the transposed convolution; the FIR pass with the same padding)."""
  from score_sde.models import up_or_down_sampling as ud

  rng = np.random.default_rng(0)
  c_in, c_out, h = 2, 3, 4
  x = rng.normal(size=(1, c_in, h, h))
  w = rng.normal(size=(c_out, c_in, 3, 3))  # the release's OIHW weight
  # conv_transpose2d(x, flip(w).swap(in, out), stride 2): scatter x[i, j] * w^T into 2i, 2j.
  wt = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # [in, out, kh, kw]
  y = np.zeros((c_out, 2 * (h - 1) + 3, 2 * (h - 1) + 3))
  for i in range(h):
    for j in range(h):
      y[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] += np.einsum("c,coab->oab", x[0, :, i, j], wt)
  k = ud.setup_kernel((1, 3, 3, 1)) * 4
  p = (k.shape[0] - 2) - (3 - 1)
  ref = ud.upfirdn2d(
    jnp.asarray(y.transpose(1, 2, 0)[None], jnp.float32), k, pad=((p + 1) // 2 + 1, p // 2 + 1)
  )
  ours = ud.upsample_conv_2d(
    jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32),
    jnp.asarray(w.transpose(2, 3, 1, 0), jnp.float32),
    (1, 3, 3, 1),
  )
  assert ours.shape == (1, 2 * h, 2 * h, c_out)
  np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-5, atol=1e-5)


def test_pth_files_round_trip_when_torch_is_installed(tmp_path):
  """With PyTorch installed: a real .pth file (torch.save of the port's checkpoint dict) imports,
  and the same file truncated gives a one-line error."""
  torch = pytest.importorskip("torch")
  config = _small_config()
  leaves = _leaves(config)
  ckpt = _torch_checkpoint(leaves, seed=2)
  as_torch = {
    "model": {k: torch.from_numpy(v) for k, v in ckpt["model"].items()},
    "ema": dict(
      ckpt["ema"], shadow_params=[torch.from_numpy(v) for v in ckpt["ema"]["shadow_params"]]
    ),
    "optimizer": {},
    "step": 1234,
  }
  file = tmp_path / "checkpoint_3.pth"
  torch.save(as_torch, file)
  params, ema, step = ic.convert_pytorch(leaves, ic.read_pytorch(str(file)), str(file))
  want = ic.convert_pytorch(leaves, ckpt)
  assert step == 1234
  for got_tree, want_tree in ((params, want[0]), (ema, want[1])):
    got, ref = flatten_dict(got_tree), flatten_dict(want_tree)
    assert set(got) == set(ref)
    for k in ref:
      np.testing.assert_array_equal(got[k], ref[k])
  bad = tmp_path / "checkpoint_4.pth"
  bad.write_bytes(file.read_bytes()[:2000])
  with pytest.raises(ic.CheckpointImportError, match="truncated") as e:
    ic.read_pytorch(str(bad))
  _one_line(e)


@pytest.mark.slow  # three network compilations; the level labels themselves: test_models_ncsnpp_ddpm
def test_imported_discrete_ve_model_gets_the_release_level_labels(tmp_path):
  """Issue 11, deviation 1: weights of a discretely trained VE NCSN++ (positional embedding, the
  release's configs/ve/cifar10_ncsnpp.py at digits size) were trained on the level index. Imported
  and reloaded as --mode sample does, the score at t = T and t = sampling.eps is the network at
  the int32 levels 0 and N - 1, divided by sigma_max and sigma_min; not the network at sigma."""
  config = _small_config()
  config.training.loss = "smld"
  config.model.embedding_type = "positional"
  config.sampling.eps = 1e-5  # the release's VE cut-off: level round((T - eps)(N - 1)/T) = N - 1
  # One resolution: the three compilations below are of the smallest network that embeds the
  # label (the resamplers play no part in it).
  config.model.ch_mult, config.model.attn_resolutions = (1,), (8,)
  _, file = _write_jax_checkpoint(tmp_path, config)
  workdir = str(tmp_path / "run")
  ic.import_checkpoint(config, "jax", str(file), workdir)
  score_apply, ema, sde, shape, _ = ru.load_ema_model(config, workdir)
  network = ru.build_network(config)
  assert (network.sigma_min, network.sigma_max, network.num_scales) == (0.01, 8.0, sde.N)
  x = jax.random.uniform(jax.random.key(0), (2, *shape))
  t = jnp.array([sde.T, config.sampling.eps])
  score = jax.jit(score_apply)(ema, x, t)
  apply = jax.jit(lambda label: network.apply({"params": ema}, x, label))
  levels = apply(jnp.array([0, sde.N - 1], jnp.int32))
  np.testing.assert_allclose(np.asarray(score), np.asarray(levels), rtol=1e-5, atol=1e-6)
  by_sigma = apply(jnp.array([8.0, 0.01]))  # what the networks were fed before the fix
  assert not np.allclose(np.asarray(by_sigma), np.asarray(levels), rtol=1e-5, atol=1e-6)
