"""NCSN++ / DDPM++ / DDPM networks.

- The paper presets have exactly the reference implementation's parameter counts (counted from
  `jax.eval_shape(model.init)`, so no memory is used).
- Tiny networks (nf 16 / 32, two resolutions of 8 x 8 inputs) in knob combinations that cover
  every block type and pyramid path: output shape = input shape; the output depends on the noise
  label (time conditioning), and does not when conditional=False, where scale_by_sigma divides by
  the label exactly; centered=False is x -> 2x - 1;
  remat changes neither the parameter tree nor the values and gradients; bfloat16 compute stays
  close to float32.

Compiling a network is most of these tests' cost: each compiled network serves several tests
(`_tiny_compiled`), and each test compiles at most the one variant its property needs.

The tiny networks get random parameters of O(1) effect (see `_random_params`): the DDPM init makes
every residual branch start at ~1e-5 x its input, which would hide the label's effect. One test
runs the real initialiser and checks exactly that property.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde.models import build_model
from score_sde.models.presets import PRESETS, REFERENCE_PARAM_COUNTS, build_preset


def _n_params(tree):
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _abstract_init(model, size, channels):
  x = jnp.zeros((1, size, size, channels))
  label = jnp.ones((1,))
  return jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, x, label, train=False))


_PRESET_SHAPES = {}


def _preset_init(name):
  """The abstract variables of a paper preset, traced once per module (a second of tracing)."""
  if name not in _PRESET_SHAPES:
    preset = PRESETS[name]
    model = build_preset(name)
    _PRESET_SHAPES[name] = _abstract_init(model, preset["image_size"], preset["num_channels"])
  return _PRESET_SHAPES[name]


# bedroom_ddpm is church_ddpm's network (both LSUN 256 x 256), asserted below without a trace.
# The CIFAR-10 networks run fast; the deep and high-resolution ones (whose paper configs'
# parameter counts test_configs checks fast) in the slow stage.
_FAST_PRESETS = {
  "cifar10_ddpm",
  "cifar10_ddpmpp_continuous",
  "cifar10_ncsnpp_continuous",
  "cifar10_ncsnpp_continuous_vp",
}


@pytest.mark.parametrize(
  "name",
  [
    n if n in _FAST_PRESETS else pytest.param(n, marks=pytest.mark.slow)
    for n in sorted(set(PRESETS) - {"bedroom_ddpm"})
  ],
)
def test_preset_parameter_count_matches_reference(name):
  variables = _preset_init(name)
  assert set(variables) == {"params"}
  assert _n_params(variables["params"]) == REFERENCE_PARAM_COUNTS[name]
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(variables))


def test_preset_counts_cover_every_paper_network():
  """The counts the paper's configs give (DDPM 35.2M, DDPM++ 61.8M, NCSN++ 62.7M / 62.8M, ...)."""
  assert PRESETS["bedroom_ddpm"] == PRESETS["church_ddpm"]
  assert REFERENCE_PARAM_COUNTS["bedroom_ddpm"] == REFERENCE_PARAM_COUNTS["church_ddpm"]
  assert REFERENCE_PARAM_COUNTS["cifar10_ddpm"] == 35_218_947
  assert REFERENCE_PARAM_COUNTS["cifar10_ddpmpp_continuous"] == 61_804_419
  assert REFERENCE_PARAM_COUNTS["cifar10_ncsnpp_continuous"] == 62_758_915
  # The Fourier embedding stores nf = 128 frequencies and doubles the first Dense's input.
  assert (
    REFERENCE_PARAM_COUNTS["cifar10_ncsnpp_continuous"]
    - REFERENCE_PARAM_COUNTS["cifar10_ncsnpp_continuous_vp"]
  ) == 128 + 128 * 512


def test_remat_and_dtype_do_not_change_the_parameter_tree():
  base = _preset_init("cifar10_ncsnpp_continuous")
  other = _abstract_init(
    build_preset("cifar10_ncsnpp_continuous", remat=True, dtype=jnp.bfloat16), 32, 3
  )
  assert jax.tree.structure(base) == jax.tree.structure(other)
  assert jax.tree.map(lambda a, b: a.shape == b.shape and a.dtype == b.dtype, base, other)


# Tiny networks -------------------------------------------------------------------------------

# Two resolutions (8 and 4): one downsampling and one upsampling step, so every resampler and
# every pyramid path runs once. Attention at a resolution besides the middle block's: only in
# ncsnpp_ve_skip_cat (the branch is the same for every variant, and each attention block adds to
# every compilation).
_TINY_NCSNPP = dict(
  nf=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(), dropout=0.1, init_scale=0.0
)

# Between them the variants run every block type, resampler, pyramid path and embedding: BigGAN
# blocks without FIR (ddpmpp) and with FIR (ncsnpp_ve_skip_cat), DDPM blocks with FIR
# resamplers (ddpm_blocks_residual) and without (ddpm_blocks_nofir_skip); input pyramids none,
# input_skip (cat and sum) and residual; output pyramids none, output_skip and residual. (The
# NCSN++ VP preset's combination, BigGAN + FIR with a residual input pyramid, repeats paths of
# ncsnpp_ve_skip_cat and ddpm_blocks_residual.)
NCSNPP_VARIANTS = {
  "ddpmpp": dict(
    resblock_type="biggan",
    fir=False,
    progressive="none",
    progressive_input="none",
    embedding_type="positional",
  ),
  "ncsnpp_ve_skip_cat": dict(
    resblock_type="biggan",
    fir=True,
    progressive="output_skip",
    progressive_input="input_skip",
    progressive_combine="cat",
    embedding_type="fourier",
    scale_by_sigma=True,
    centered=False,
    attn_resolutions=(4,),
  ),
  "ddpm_blocks_residual": dict(
    resblock_type="ddpm",
    fir=True,
    progressive="residual",
    progressive_input="residual",
    embedding_type="fourier",
    skip_rescale=False,
  ),
  "ddpm_blocks_nofir_skip": dict(
    resblock_type="ddpm",
    fir=False,
    resamp_with_conv=False,
    progressive="output_skip",
    progressive_input="input_skip",
    progressive_combine="sum",
    embedding_type="positional",
  ),
}


def _tiny(kind, **overrides):
  if kind == "ddpm":
    return build_model(
      "ddpm",
      dict(
        dict(nf=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,), dropout=0.1),
        **overrides,
      ),
    )
  return build_model("ncsnpp", dict(_TINY_NCSNPP, **NCSNPP_VARIANTS[kind]) | overrides)


def _inputs(batch=2, size=8, channels=3):
  x = jax.random.normal(jax.random.key(1), (batch, size, size, channels))
  return x, jnp.linspace(0.5, 5.0, batch)


def _random_params(model, x, label, seed=0):
  """Random parameters of the right shapes, drawn with numpy (compiling the real initialiser
  takes longer than every other test here): kernels N(0, 1/fan_in), GroupNorm scales 1 + N(0, 0.1^2),
  biases N(0, 0.1^2), Fourier frequencies N(0, 1). Unlike the DDPM initialisation, every residual
  branch then contributes at O(1), so the conditioning tests see the label's effect."""
  shapes = jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, x, label))["params"]
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    names = [getattr(k, "key", str(k)) for k in path]
    z = rng.normal(size=leaf.shape).astype(np.float32)
    if any("GaussianFourierProjection" in n for n in names):
      return jnp.asarray(z)
    if leaf.ndim >= 2:
      return jnp.asarray(z / np.sqrt(np.prod(leaf.shape[:-1])))
    return jnp.asarray(1.0 + 0.1 * z if names[-1] == "scale" else 0.1 * z)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _apply(model):
  """Jitted (params, x, label, train=False, dropout_key=None) -> output."""

  def f(params, x, label, train=False, dropout_key=None):
    rngs = None if dropout_key is None else {"dropout": dropout_key}
    return model.apply({"params": params}, x, label, train=train, rngs=rngs)

  return jax.jit(f, static_argnames="train")


_CACHE = {}


def _tiny_compiled(kind, **overrides):
  """(model, jitted apply, random params) of `_tiny(kind, **overrides)` on `_inputs()`, built once
  per module: several tests run the same network, and its compilation is most of their cost."""
  key = (kind, tuple(sorted(overrides.items())))
  if key not in _CACHE:
    model = _tiny(kind, **overrides)
    x, label = _inputs()
    _CACHE[key] = (model, _apply(model), _random_params(model, x, label))
  return _CACHE[key]


def _dropout_key(seed):
  """A dropout key of the rbg generator: its bits are one XLA operation, while threefry's hash is
  unrolled at every dropout layer and doubles the network's compilation time. Dropout needs
  independent Bernoulli masks, not one generator's stream."""
  return jax.random.key(seed, impl="rbg")


ALL_KINDS = sorted(NCSNPP_VARIANTS) + ["ddpm"]
# The release's two NCSN++ block variants with DDPM residual blocks: their shapes in the slow
# stage (each a whole-network compilation); the fast suite checks DDPM++, NCSN++ and the U-Net.
SHAPE_KINDS = [
  pytest.param(k, marks=pytest.mark.slow) if k.startswith("ddpm_blocks") else k for k in ALL_KINDS
]


@pytest.mark.parametrize("kind", SHAPE_KINDS)
def test_shape_and_time_conditioning(kind):
  _, apply, params = _tiny_compiled(kind)
  x, label = _inputs()
  out = apply(params, x, label)
  assert out.shape == x.shape and out.dtype == x.dtype
  assert bool(jnp.all(jnp.isfinite(out)))
  # Same image, another noise level: the output changes by an O(1) fraction.
  out2 = apply(params, x, label * 1.7)
  rel = float(jnp.abs(out2 - out).max() / jnp.abs(out).max())
  assert rel > 1e-2, rel
  # Deterministic without dropout.
  np.testing.assert_array_equal(np.asarray(apply(params, x, label)), np.asarray(out))


@pytest.mark.parametrize("kind", ["ddpmpp", "ddpm"])
def test_unconditional_network_ignores_the_label_and_scale_by_sigma_divides_by_it(kind):
  """conditional=False, scale_by_sigma=True: s(x, sigma) = net(x) / sigma with net(x) independent
  of sigma. Scaling sigma by 4 scales every float32 quotient by exactly 1/4 (a power of two
  commutes with rounding), so the check is bit for bit: no trace of the label reaches net(x)."""
  model = _tiny(kind, conditional=False, scale_by_sigma=True)
  x, label = _inputs()
  params = _random_params(model, x, label)
  apply = _apply(model)
  a, b = apply(params, x, label), apply(params, x, 4.0 * label)
  assert float(jnp.abs(a).min()) > 0
  np.testing.assert_array_equal(4.0 * np.asarray(b), np.asarray(a))


@pytest.mark.parametrize("kind", ["ddpmpp", "ddpm"])
def test_uncentered_network_maps_x_to_2x_minus_1(kind):
  x, label = _inputs()
  _, apply_centered, params = _tiny_compiled(kind)  # centered=True is the default
  got = _apply(_tiny(kind, centered=False))(params, (x + 1) / 2, label)
  want = apply_centered(params, x, label)
  np.testing.assert_allclose(
    np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4 * float(jnp.abs(want).max())
  )


def test_dropout_is_active_only_in_training():
  """(Without dropout the network is deterministic: test_shape_and_time_conditioning. DDPM's
  dropout: test_remat_gives_the_same_values_and_gradients, whose loss is in training mode.)"""
  _, apply, params = _tiny_compiled("ddpmpp")
  x, label = _inputs()
  run = lambda seed: apply(params, x, label, train=True, dropout_key=_dropout_key(seed))
  assert float(jnp.abs(run(0) - run(1)).max()) > 0
  np.testing.assert_array_equal(np.asarray(run(0)), np.asarray(run(0)))


@pytest.mark.parametrize(
  # A memory option: the gradients of a whole network twice (the parameter tree is checked fast).
  "kind",
  [pytest.param(k, marks=pytest.mark.slow) for k in ("ncsnpp_ve_skip_cat", "ddpm")],
)
def test_remat_gives_the_same_values_and_gradients(kind):
  x, label = _inputs()
  # One level, only the middle blocks and the one residual block of the way up (no residual
  # blocks on the way down) keep DDPM's two compilations short; every block type but the
  # resamplers remains.
  small = dict(ch_mult=(1,), attn_resolutions=(), num_res_blocks=0) if kind == "ddpm" else {}
  # Blocks keep their names under remat, so even the dropout masks are the same.
  plain, remat = _tiny(kind, **small), _tiny(kind, remat=True, **small)
  params = _random_params(plain, x, label)
  assert jax.tree.structure(_random_params(remat, x, label)) == jax.tree.structure(params)

  def loss(model, p, seed):
    out = model.apply({"params": p}, x, label, train=True, rngs={"dropout": _dropout_key(seed)})
    return jnp.mean(out**2)

  plain_vg, remat_vg = (
    jax.jit(jax.value_and_grad(lambda p, seed, m=m: loss(m, p, seed))) for m in (plain, remat)
  )
  (l1, g1), (l2, g2) = plain_vg(params, 3), remat_vg(params, 3)
  np.testing.assert_allclose(float(l1), float(l2), rtol=1e-5)
  # Dropout is active in training: another key, another loss; the same key, the same loss.
  assert float(plain_vg(params, 4)[0]) != float(l1)
  assert float(plain_vg(params, 3)[0]) == float(l1)
  # Recomputation reorders float32 sums: gradients agree to ~1e-6 of the largest gradient entry
  # (entries that cancel mathematically, e.g. conv biases feeding a GroupNorm, are pure rounding).
  scale = max(float(jnp.abs(a).max()) for a in jax.tree.leaves(g1))
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("kind", ["ddpmpp", pytest.param("ddpm", marks=pytest.mark.slow)])
def test_bfloat16_compute_tracks_float32(kind):
  """bf16 has an 8-bit mantissa (relative rounding 2^-9 per op); a few dozen layers deep the
  output agrees with float32 to a few percent of its scale."""
  x, label = _inputs()
  _, apply_f32, params = _tiny_compiled(kind)
  want = apply_f32(params, x, label)
  bf16 = _apply(_tiny(kind, dtype=jnp.bfloat16))
  got = bf16(params, x, label)
  assert got.dtype == jnp.float32  # the output keeps the input's dtype
  err = float(jnp.abs(got - want).max() / jnp.abs(want).max())
  assert err < 0.1, err
  # bf16 input -> bf16 output (abstract evaluation: the dtype is fixed at trace time, and a third
  # compilation of the network would cost more than the rest of this test).
  out_bf16 = jax.eval_shape(bf16, params, x.astype(jnp.bfloat16), label)
  assert out_bf16.dtype == jnp.bfloat16


def test_unknown_knob_values_are_rejected():
  x, label = _inputs()
  for bad in (
    dict(progressive="no_such"),
    dict(resblock_type="no_such"),
    dict(embedding_type="no_such"),
    dict(nonlinearity="no_such"),
  ):
    model = build_model("ncsnpp", dict(_TINY_NCSNPP, **bad))
    with pytest.raises(ValueError, match="choose from"):
      model.init({"params": jax.random.key(0)}, x, label)


def test_initialisation_starts_every_residual_branch_at_zero():
  """init_scale = 0: the last convolution of every branch and of the head has kernel scale
  1e-10 (std ~ 1e-5 / sqrt(fan_avg)), so the initial output is tiny and nearly label-independent."""
  # One resolution and only the middle attention block keep the compilation of the initialiser
  # short (every kind of residual branch remains).
  model = _tiny("ddpmpp", ch_mult=(1,), attn_resolutions=())
  x, label = _inputs()
  # The rbg generator (see `_dropout_key`) compiles the initialiser in 2/5 of threefry's time;
  # the initial output comes from the same program.
  out, variables = jax.jit(model.init_with_output)(
    {"params": jax.random.key(0, impl="rbg")}, x, label
  )
  params = variables["params"]
  assert _n_params(params) == _n_params(
    jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, x, label))
  )
  assert float(jnp.abs(out).max()) < 1e-3
  # The head is the last plain convolution created.
  head = max((k for k in params if k.startswith("Conv_")), key=lambda k: int(k.split("_")[1]))
  assert float(jnp.abs(params[head]["kernel"]).max()) < 1e-4


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_bfloat16_runs_every_convolution_and_matmul_in_bfloat16(kind):
  """dtype=bfloat16 casts at the layers, not only at the input: no float32 conv or matmul remains."""
  model = _tiny(kind, dtype=jnp.bfloat16)
  x, label = _inputs()
  # One trace of the initialiser holds the forward pass and the parameters it creates (the
  # initialisers themselves use no convolution or matmul).
  jaxpr, (_, variables) = jax.make_jaxpr(
    lambda: model.init_with_output({"params": jax.random.key(0)}, x, label), return_shape=True
  )()
  heavy = [
    e.outvars[0].aval.dtype
    for e in jaxpr.jaxpr.eqns
    if e.primitive.name in ("conv_general_dilated", "dot_general")
  ]
  assert heavy and all(d == jnp.bfloat16 for d in heavy)
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(variables["params"]))


# Noise labels (issue 11, deviation 1; `models.noise_levels`) ----------------------------------

_TABLE = dict(sigma_min=0.01, sigma_max=50.0, num_scales=1000)


def test_level_labels_separate_adjacent_positional_embeddings():
  """With the release's level index, adjacent levels of N = 1000 are sqrt(sum_j 4 sin^2(w_j / 2))
  = 1.94 apart in the 128-d positional embedding (for any k: e(k + 1) - e(k) is a rotation);
  with sigma in [0.01, 50] as the label the lowest levels were 1.7e-4 apart."""
  from score_sde import sde as sde_lib
  from score_sde.models.embeddings import timestep_embedding

  sde = sde_lib.VESDE(sigma_min=0.01, sigma_max=50.0, N=1000)
  t = jnp.linspace(1.0, 1e-5, 1000)  # the sampler's time grid
  w = 10000.0 ** (-np.arange(64) / 63)
  want = np.sqrt(np.sum(4 * np.sin(w / 2) ** 2))
  gaps = lambda label: np.linalg.norm(
    np.diff(np.asarray(timestep_embedding(label, 128)), axis=0), axis=1
  )
  np.testing.assert_allclose(gaps(sde.noise_label(t, discrete=True)), want, rtol=1e-4)
  assert 1.9 < want < 2.0
  assert gaps(sde.noise_label(t)).min() < 2e-4


@pytest.mark.parametrize("kind", ["ncsnpp_ve_skip_cat", "ddpm"])
def test_level_labels_read_sigma_from_the_table(kind):
  """An int32 level k stands for sigma_k = exp(linspace(log 50, log 0.01, 1000))[k]: the Fourier
  NCSN++ gives what it gives for the float label sigma_k (it embeds log sigma_k and divides by
  it); the positional DDPM embeds k itself and divides its output by sigma_k (the release's
  used_sigmas = sigmas[labels])."""
  x, _ = _inputs()
  k = jnp.array([0, 999], jnp.int32)
  sigma_k = jnp.array([50.0, 0.01])
  # The reference is the network compiled without the table (the same parameter tree).
  plain = _tiny_compiled(kind)[1]
  if kind == "ddpm":
    model = _tiny(kind, scale_by_sigma=True, **_TABLE)
    params = _random_params(model, x, k)
    want = plain(params, x, k.astype(jnp.float32)) / sigma_k[:, None, None, None]
  else:
    model = _tiny(kind, **_TABLE)
    params = _random_params(model, x, k)
    want = plain(params, x, sigma_k)
  assert jax.tree.structure(params) == jax.tree.structure(_tiny_compiled(kind)[2])
  got = _apply(model)(params, x, k)
  np.testing.assert_allclose(
    np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5 * float(jnp.abs(want).max())
  )


def test_a_level_label_without_a_table_is_refused():
  model = _tiny("ddpm", scale_by_sigma=True)
  x, label = _inputs()
  with pytest.raises(ValueError, match="sigma table"):
    jax.eval_shape(lambda: model.init({"params": jax.random.key(0)}, x, label.astype(jnp.int32)))
