"""Controllable generation from the command line: classifier training, inputs and masks, the
sampling runner, and (slow) digits: a classifier trained here recognises class-conditional
digits as the requested class far above chance."""

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_sampling_pc import separated_mixture

from score_sde import controllable as ctl, controllable_runner as cr, gmm as G
from score_sde.runner_utils import load_config
from score_sde.sde import VPSDE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_exact_classifier_minimises_the_noisy_classifier_loss():
  """The cross-entropy on noised data is minimised by the true posterior p_t(y | x_t): with the
  same noise draws (common random numbers), the exact mixture classifier has a lower loss than
  a tempered or a biased one. The gap is a KL divergence > 0; its Monte-Carlo error at n = 4000
  is far smaller than the gaps of these perturbations."""
  sde, g = VPSDE(), separated_mixture(2)
  kx, kc, kl = jax.random.split(jax.random.key(0), 3)
  comp = jax.random.categorical(kc, jnp.log(g.weights), shape=(4000,))
  x0 = g.means[comp] + jnp.einsum(
    "nij,nj->ni", jnp.linalg.cholesky(g.covs)[comp], jax.random.normal(kx, (4000, 2))
  )
  exact = G.marginal_class_logits(g, sde)

  def with_label_as_t(fn):  # the loss feeds the noise label 999 t; the mixture wants t
    return lambda x, label: fn(x, label / 999.0)

  loss = lambda f: ctl.noisy_classifier_loss(kl, with_label_as_t(f), x0, comp, sde)[0]
  tempered = lambda x, t: 0.5 * exact(x, t)
  biased = lambda x, t: exact(x, t) + jnp.array([1.0, 0.0, 0.0])
  # The three losses in one compiled program.
  base, *perturbed = map(float, jax.jit(lambda: [loss(f) for f in (exact, tempered, biased)])())
  assert base < perturbed[0] - 0.01 and base < perturbed[1] - 0.01


def test_builtin_masks():
  shape = (8, 8, 1)
  left = cr.builtin_mask("left_half", shape)
  assert left[:, :4].min() == 1 and left[:, 4:].max() == 0
  center = cr.builtin_mask("center", shape)
  assert center.sum() == 64 - 16 and center[2:6, 2:6].max() == 0
  rnd = cr.builtin_mask("random_pixels", shape)
  assert 0.1 < rnd.mean() < 0.4 and set(np.unique(rnd)) <= {0.0, 1.0}
  with pytest.raises(ValueError, match="left_half"):
    cr.builtin_mask("no_such", shape)


def test_inputs_and_masks_from_files(tmp_path):
  """uint8 images from an .npz become the model's range; a mask broadcasts to every sample;
  an image file is read as white = known."""
  from PIL import Image

  images = np.zeros((3, 8, 8, 1), np.uint8)
  images[:, :, :4] = 255
  np.savez(tmp_path / "in.npz", images=images)
  x = cr.load_inputs(str(tmp_path / "in.npz"), 5, (8, 8, 1), None, centered=True)
  assert x.shape == (5, 8, 8, 1) and x.min() == -1.0 and x.max() == 1.0
  np.testing.assert_array_equal(x[3], x[0])  # cycled
  mask = np.zeros((8, 8))
  mask[:4] = 1
  np.savez(tmp_path / "m.npz", mask=mask)
  m = cr.load_mask(str(tmp_path / "m.npz"), 5, (8, 8, 1))
  assert m.shape == (5, 8, 8, 1) and m[:, :4].min() == 1 and m[:, 4:].max() == 0
  Image.fromarray((255 * mask).astype(np.uint8)).save(tmp_path / "m.png")
  np.testing.assert_array_equal(cr.load_mask(str(tmp_path / "m.png"), 5, (8, 8, 1)), m)
  with pytest.raises(ValueError, match="does not fit"):
    cr.load_mask(str(tmp_path / "m.npz"), 5, (4, 4, 1))
  with pytest.raises(ValueError, match="1, 3"):
    cr.parse_classes("1, 3, 12", 10)
  assert cr.parse_classes(None, 3) == [0, 1, 2] and cr.parse_classes("2,0", 3) == [2, 0]


@functools.lru_cache(maxsize=None)  # built once for the two tests below
def _tiny_label_conditional_edm():
  """configs/edm/toy.py shrunk, made label-conditional (3 classes + "no label"): its Bundle and
  random parameters (the zero-initialised output layer made nonzero, so every path is seen)."""
  from score_sde import runner_utils as ru

  config = load_config(os.path.join(ROOT, "configs/edm/toy.py"))
  config.model.hidden, config.model.num_layers, config.model.embedding_dim = 16, 1, 8
  config.model.num_classes = 3
  config.training.label_dropout = 0.0
  bundle = ru.build(config, shape=(2,))

  @jax.jit  # one program, not one eager dispatch per layer
  def init():
    leaves, tree = jax.tree.flatten(bundle.init_params(jax.random.key(0)))
    keys = jax.random.split(jax.random.key(1), len(leaves))
    return jax.tree.unflatten(
      tree, [v + 0.3 * jax.random.normal(k, v.shape, v.dtype) for v, k in zip(leaves, keys)]
    )

  return config, bundle, init()


def test_guided_scores_of_an_edm_model_go_through_its_preconditioning():
  """For an EDM-preconditioned label-conditional network, the conditional sampler's scores are
  built by the unconditional runner's `score_apply`, i.e. score = (D(x; t) - x) / t^2 on the EDM
  path (a = 1, sigma = t) with D = c_skip x + c_out F(c_in x; c_noise, labels):
    cfg at w = 1 is the conditional score, at w = 0 the "no label" one (= no labels given), at
    w = 2 the combination 2 score_c - score_u, in eps and score form alike;
    class guidance at scale 0 is the unconditional runner's score, and with a linear classifier
    logits_k = v_k . x it adds scale (v_y - sum_k p_k v_k).
  Reading the network's output as a score without its preconditioning fails every one."""
  from score_sde.models import precond as P

  config, bundle, params = _tiny_label_conditional_edm()
  x = jax.random.normal(jax.random.key(2), (4, 2))
  t = jnp.array([0.05, 0.5, 3.0, 40.0])
  y = jnp.array([0, 2, 1, 0], jnp.int32)
  pre = P.EDMPrecond(sigma_data=config.model.sigma_data)

  def exact(labels):  # (D - x) / sigma^2, the network called by hand
    net = lambda z, c: bundle.network.apply({"params": params}, z, c, labels=labels)
    return (P.denoise(net, pre, x, t) - x) / t[:, None] ** 2

  # One compiled program for the four scores, not eager dispatch of each layer.
  score_c, score_u, runner_c, runner_u = map(
    lambda a: np.asarray(a, np.float64),
    jax.jit(
      lambda: (
        exact(y),
        exact(jnp.full_like(y, 3)),
        bundle.score_apply(params, x, t, y),
        bundle.score_apply(params, x, t),
      )
    )(),
  )
  assert np.max(np.abs(score_c - score_u)) > 1e-3  # the labels reach the inner network
  np.testing.assert_allclose(runner_c, score_c, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(runner_u, score_u, rtol=1e-5, atol=1e-6)

  v = jnp.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.5]])
  logits_fn = lambda x, t: x @ v.T
  p = jax.nn.softmax(x @ v.T, axis=-1)
  tilt = np.asarray(v[y] - p @ v, np.float64)
  # (condition, scale, options, expected score, rtol, atol)
  cases = [
    ("cfg", w, dict(cfg_form=form), want, 1e-4, 1e-5)
    for form in ("eps", "score")
    for w, want in [(1.0, score_c), (0.0, score_u), (2.0, 2.0 * score_c - score_u)]
  ] + [
    ("class", 0.0, dict(logits_fn=logits_fn), score_u, 1e-5, 1e-6),
    ("class", 1.5, dict(logits_fn=logits_fn), score_u + 1.5 * tilt, 1e-5, 1e-5),
  ]
  fns = [
    cr.guided_score_fn(
      cond, bundle.score_apply, params, y, bundle.sde, guidance_scale=w, num_classes=3, **kw
    )
    for cond, w, kw, *_ in cases
  ]
  # Every guided score in one compiled program.
  got = jax.jit(lambda x, t: [fn(x, t) for fn in fns])(x, t)
  for g, (cond, w, kw, want, rtol, atol) in zip(got, cases):
    np.testing.assert_allclose(
      np.asarray(g, np.float64), want, rtol=rtol, atol=atol, err_msg=f"{cond} w={w} {kw}"
    )


def test_edm_loss_of_a_label_conditional_model_sees_the_labels():
  """The training loss of a preconditioned label-conditional model feeds the batch's labels to
  the inner network: with label dropout 0, an unlabelled batch scores as the "no label" class,
  and other labels give another loss (same key: same sigmas and noise)."""
  from score_sde import runner_utils as ru

  config, bundle, params = _tiny_label_conditional_edm()
  loss_fn = jax.jit(ru.make_loss_fn(config, bundle.network, bundle.sde))
  key = jax.random.key(3)
  x0 = jax.random.normal(jax.random.key(4), (8, 2))
  loss = lambda labels: float(loss_fn(key, params, (x0, labels))[0])
  y = jnp.arange(8, dtype=jnp.int32) % 3
  no_label = float(loss_fn(key, params, x0)[0])
  np.testing.assert_allclose(loss(jnp.full_like(y, 3)), no_label, rtol=1e-6)
  assert abs(loss(y) - no_label) > 1e-4 * abs(no_label)


def _toy_classifier_config(n_iters):
  config = load_config(os.path.join(ROOT, "configs/toy/vp_eight_gaussians_class.py"))
  c = config.classifier
  c.model.hidden, c.model.num_layers, c.model.embedding_dim = 64, 1, 32
  c.batch_size, c.n_iters, c.n_jitted_steps, c.snapshot_freq, c.log_freq = (
    128,
    n_iters,
    20,
    100,
    100,
  )
  c.lr = 3e-3
  return config


@pytest.mark.slow  # a training run; the noisy-classifier loss itself is tested above
def test_classifier_training_learns_and_resumes(tmp_path):
  """200 steps in two runs of 100 (the second resumes from the first's checkpoint): the toy
  classifier names the component of clean data far above chance (1/8), and the run's files are
  where sampling looks for them."""
  from score_sde.train_classifier import classifier_dir, load_classifier_logits_fn, train

  workdir = str(tmp_path)
  train(_toy_classifier_config(100), workdir)
  result = train(_toy_classifier_config(200), workdir)
  directory = classifier_dir(workdir)
  assert sorted(
    int(d) for d in os.listdir(os.path.join(directory, "checkpoints")) if d.isdigit()
  ) == [100, 200]
  assert result["test_accuracy"][1e-05] > 0.9
  logits_fn, step = load_classifier_logits_fn(_toy_classifier_config(200), workdir)
  assert step == 200


# The slow digits test's lengths, cut from the configs' 4000 / 2000 training steps to fit ~15
# minutes on two loaded CPU cores; guidance at w = 2 keeps the samples recognisable at this
# length (1200 / 600 / 200 sampling steps gave accuracy 0.93).
DIGITS_SCORE_STEPS, DIGITS_CLASSIFIER_STEPS, DIGITS_SAMPLING_STEPS = 1000, 400, 100


@pytest.mark.slow
def test_digits_classifier_recognises_class_conditional_digits(tmp_path):
  """End to end through the CLI on digits: a label-conditional U-Net trained with label dropout
  (configs/digits/cfg_small_unet.py, shortened), a noise-conditional Wide ResNet trained on
  noised digits (configs/digits/class_guided.py, shortened), classifier-free guided samples at
  w = 2 (10 per digit), and the classifier (at t = 1e-3) naming them: far above chance (0.1).
  A guidance that lost the labels would score near chance."""
  workdir = str(tmp_path / "digits_cfg")
  # The CLI as a user runs it: one CPU device, not conftest's 8 forced ones (under which the
  # sampling took six times the CPU time).
  flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8", "")
  env = dict(os.environ, PYTHONPATH=ROOT, XLA_FLAGS=flags)
  cfg = os.path.join(ROOT, "configs/digits/cfg_small_unet.py")
  clf = os.path.join(ROOT, "configs/digits/class_guided.py")

  def cli(config, *args):
    out = subprocess.run(
      [sys.executable, "-m", "score_sde.main", f"--config={config}", f"--workdir={workdir}", *args],
      env=env,
      cwd=ROOT,
      capture_output=True,
      text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout

  n, k = DIGITS_SCORE_STEPS, DIGITS_CLASSIFIER_STEPS
  cli(cfg, f"--config.training.n_iters={n}", f"--config.training.snapshot_freq={n}")
  log = cli(
    clf,
    "--mode=train_classifier",
    f"--config.classifier.n_iters={k}",
    f"--config.classifier.snapshot_freq={k}",
    "--config.classifier.log_freq=200",
  )
  print(*[line for line in log.splitlines() if "accuracy" in line])  # on noised test digits
  cli(
    cfg,
    "--mode=sample",
    "--config.sampling.guidance_scale=2.0",
    "--config.sampling.num_samples=100",
    "--config.sampling.batch_size=100",
    f"--config.sampling.num_steps={DIGITS_SAMPLING_STEPS}",
  )
  out = np.load(os.path.join(workdir, f"controllable_{n}_cfg.npz"))
  assert os.path.exists(os.path.join(workdir, f"controllable_{n}_cfg.png"))
  from score_sde.train_classifier import load_classifier_logits_fn

  logits_fn, _ = load_classifier_logits_fn(load_config(clf), workdir)
  x, y = jnp.asarray(out["samples"]), np.asarray(out["labels"])
  np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, 10))
  pred = np.asarray(jnp.argmax(logits_fn(x, jnp.full((len(x),), 1e-3)), -1))
  accuracy = float(np.mean(pred == y))
  print(f"classifier accuracy on w = 2 conditional digits: {accuracy:.2f} (chance 0.10)")
  assert accuracy > 0.5
