"""Label-conditional score networks and noise-conditional classifiers (shapes and structure).

Every registered network takes `num_classes`: 0 builds the unconditional network (no class
parameters: the parameter counts of the paper's configs are unchanged), > 0 adds a class
embedding with one extra row, num_classes, for "no label" (classifier-free guidance), which is
also what a call without labels uses.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from score_sde.models import build_model
from score_sde.models.classifiers import build_classifier

TINY = {
  "mlp": ((6, 2), dict(hidden=16, num_layers=1, embedding_dim=8)),
  "small_unet": ((2, 8, 8, 1), dict(nf=16, ch_mult=(1,))),  # 8 groups of 2 channels
  # DDPM / NCSN++ GroupNorm has min(32, C) groups: at C <= 32 every channel is normalised
  # alone and the embedding (a per-channel constant) cancels; 64 channels keep some of it.
  "ncsnpp": (
    (2, 8, 8, 1),
    dict(
      nf=64,
      ch_mult=(1,),
      num_res_blocks=1,
      attn_resolutions=(),
      progressive_input="none",
      fir=False,
      dropout=0.0,
    ),
  ),
  "ddpm": (
    (2, 8, 8, 1),
    dict(nf=64, ch_mult=(1,), num_res_blocks=1, attn_resolutions=(), dropout=0.0),
  ),
  "ncsnv2": ((2, 8, 8, 1), dict(nf=4, normalization="GroupNorm")),
  "ncsn": ((2, 8, 8, 1), dict(nf=4)),
}


def _count(params):
  return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(params))


def _random_params(init, *args, seed=0):
  """Parameters with the initialiser's tree and shapes, drawn in numpy: N(0, 0.3^2) entries, or
  1 + N(0, 0.3^2) for norm scales. (Zero-initialised output layers make every output 0 at init,
  and compiling the initialiser, or drawing each leaf with jax.random, costs seconds.)"""
  shapes = jax.eval_shape(lambda: init(jax.random.key(0), *args))["params"]
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    z = 0.3 * rng.standard_normal(leaf.shape).astype(np.float32)
    return jnp.asarray(z + 1.0 if jax.tree_util.keystr(path).endswith("['scale']") else z)

  return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.mark.parametrize("name", sorted(TINY))
def test_class_embedding_adds_only_its_table(name):
  """num_classes = 0 leaves the parameters as they were; num_classes = 3 adds a [4, dim] table
  (and, for the RefineNets, the first convolution's weights from the dim class channels and the
  last one's to the dim extra outputs that are dropped)."""
  shape, hp = TINY[name]
  x, label = jnp.zeros(shape), jnp.ones(shape[:1])
  y = jnp.zeros(shape[0], jnp.int32)
  p0 = jax.eval_shape(lambda: build_model(name, hp).init(jax.random.key(1), x, label))["params"]
  p1 = jax.eval_shape(
    lambda: build_model(name, dict(hp, num_classes=3)).init(jax.random.key(1), x, label, labels=y)
  )["params"]
  assert "class_embedding" not in p0 and "class_embedding" in p1
  table = p1["class_embedding"]["embedding"]
  assert table.shape[0] == 4  # 3 classes + the "no label" row
  dim = table.shape[1]
  extra = table.size
  if name in ("ncsn", "ncsnv2"):
    extra += 9 * dim * hp["nf"] + (9 * hp["nf"] * dim + dim)
  assert _count(p1) - _count(p0) == extra


@pytest.mark.parametrize(
  "name",
  [
    pytest.param(n, marks=pytest.mark.slow) if n not in ("mlp", "small_unet") else n
    for n in sorted(TINY)
  ],
)
def test_class_embedding_conditions_the_output(name):
  """Different labels give different outputs; no label is the 'no label' row num_classes; a
  network built without classes refuses labels."""
  shape, hp = TINY[name]
  x = jax.random.normal(jax.random.key(0), shape)
  label = jnp.linspace(0.5, 2.0, shape[0])
  plain = build_model(name, hp)
  cond = build_model(name, dict(hp, num_classes=3))
  p0 = jax.eval_shape(lambda: plain.init(jax.random.key(1), x, label))["params"]
  p1 = _random_params(
    lambda k, *a: cond.init(k, *a, labels=jnp.zeros(shape[0], jnp.int32)), x, label
  )
  apply = jax.jit(lambda y: cond.apply({"params": p1}, x, label, labels=y))
  out = {k: apply(jnp.full(shape[0], k, jnp.int32)) for k in range(4)}
  assert out[0].shape == x.shape
  assert float(jnp.max(jnp.abs(out[0] - out[1]))) > 1e-4
  no_label = jax.jit(lambda: cond.apply({"params": p1}, x, label))()
  np.testing.assert_allclose(no_label, out[3], rtol=1e-5, atol=1e-5)  # two compilations
  with pytest.raises(ValueError, match="num_classes"):
    jax.eval_shape(
      lambda p: plain.apply({"params": p}, x, label, labels=jnp.zeros(shape[0], jnp.int32)), p0
    )


@pytest.mark.parametrize(
  "name,shape,hp",
  [
    pytest.param(
      "wideresnet",
      (3, 8, 8, 1),
      dict(num_classes=10, blocks_per_group=1, channel_multiplier=1),
      marks=pytest.mark.slow,
    ),
    ("mlp_classifier", (3, 2), dict(num_classes=8, hidden=16, num_layers=1, embedding_dim=8)),
  ],
)
def test_classifiers_give_logits_per_sample(name, shape, hp):
  """logits [B, K], and each sample's logits depend on that sample only (no batch statistics:
  the guidance gradient of the batch sum is then the per-sample gradient)."""
  clf = build_classifier(name, hp)
  x = jax.random.normal(jax.random.key(0), shape)
  label = jnp.array([0.1, 1.0, 5.0])
  params = _random_params(clf.init, x, label)
  f = jax.jit(lambda x, lab: clf.apply({"params": params}, x, lab))
  logits = f(x, label)
  assert logits.shape == (3, hp["num_classes"])
  # Other samples in rows 1 and 2 (the same compiled program): row 0 is unchanged.
  other = x.at[1:].set(jax.random.normal(jax.random.key(3), x[1:].shape))
  np.testing.assert_allclose(f(other, label)[0], logits[0], rtol=1e-5, atol=1e-5)
  assert float(jnp.max(jnp.abs(f(x, label[::-1])[1] - logits[1]))) == 0.0  # middle row kept
  assert float(jnp.max(jnp.abs(f(x, label + 1.0) - logits))) > 0  # the noise level matters


def test_wrn_28_10_parameter_count():
  """WRN-28-10 with the noise embedding: 36.5M convolution / head parameters of WRN-28-10
  (Zagoruyko & Komodakis: 36.5M) plus the embedding MLP and the per-block Dense(temb) layers."""
  clf = build_classifier("wideresnet", {})
  x = jnp.zeros((1, 32, 32, 3))
  shapes = jax.eval_shape(lambda: clf.init(jax.random.key(0), x, jnp.ones(1)))["params"]
  total = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(shapes))
  dense_temb = sum(512 * w + w for w in [160] * 4 + [320] * 4 + [640] * 4)
  temb_mlp = 256 + (256 * 512 + 512) + (512 * 512 + 512)  # Fourier W (untrained) + 2 Dense
  assert total - dense_temb - temb_mlp == pytest.approx(36.5e6, rel=0.01)
