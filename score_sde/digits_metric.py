"""An offline sample-quality metric for the embedded digits: a small classifier's features.

No Inception network (nor any download) is needed: a small MLP classifier is trained on the
digits train split (the 90% that the generative models train on, `data.digits`), and

    digits FD = FD(N(mu_s, S_s), N(mu_r, S_r))     (score_sde.fid.frechet_distance)

between the Gaussians fitted to its penultimate-layer features of samples (s) and of the train
split (r);

    classifier score = exp(E_x KL(p(y | x) || p(y)))   (the Inception score with this classifier;
                                                       at most 10, higher is better)

and the class fractions of the samples' predictions: `coverage` = sum_c min(f_c, r_c) (1 when
the classes are as frequent as in the data; 1 - total variation), `class_coverage` = f_c / r_c.
The classifier's accuracy is measured on the test split, which it never sees.

Samples in the model's space map to the classifier's [0, 1] 8 x 8 input as the data pipeline
maps pixels (`data.preprocess`): x -> (x + 1) / 2 when the data are centred, clipped to [0, 1];
a model run at another size (configs/digits/vp_small_unet.py: 16) is shrunk to 8 x 8 and compared
with the train split taken through the same upsampling and shrinking.

    python -m score_sde.digits_metric                     # train (~seconds) or load the cache
    python -m score_sde.digits_metric --samples runs/digits/samples_1500_<sampler>.npz --centered

The checkpoint is cached at ~/.cache/score_sde/digits_classifier_seed{seed}.npz (or --checkpoint);
training is deterministic given the seed. FD depends on the number of samples (it is biased
upward at small n): compare numbers computed from equal sample counts.
"""

import dataclasses
import functools
import os
import sys
from typing import Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from score_sde import fid

NUM_CLASSES = 10
IMAGE_SIZE = 8
CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "score_sde")


def default_checkpoint(seed: int = 0) -> str:
  return os.path.join(CACHE_DIR, f"digits_classifier_seed{seed}.npz")


def digits_splits(image_size: int = IMAGE_SIZE, seed: int = 0) -> Dict[str, np.ndarray]:
  """The digits in [0, 1] as the data pipeline sees them at `image_size` (k / 255,
  k = round(255 g / 16), bilinearly resized), [n, S, S, 1], with labels, split as `data.digits`
  splits them (90% / 10% by a permutation of `seed`; seed 0 is the pipeline's split, other seeds
  give other splits for measuring how the held-out scores vary)."""
  from sklearn.datasets import load_digits

  from score_sde.data.digits import load_digits_uint8

  images = load_digits_uint8(image_size).astype(np.float32) / 255.0
  labels = load_digits().target.astype(np.int32)
  order = np.random.default_rng(seed).permutation(len(images))
  n_train = int(0.9 * len(images))
  train, test = order[:n_train], order[n_train:]
  return {
    "train_x": images[train],
    "train_y": labels[train],
    "test_x": images[test],
    "test_y": labels[test],
  }


def to_classifier_input(samples: np.ndarray, centered: bool) -> np.ndarray:
  """Model-space samples [B, H, W, 1] -> classifier input [B, 8, 8, 1] in [0, 1]: uncentre,
  clip, and for H != 8 shrink by averaging s x s blocks (H = 8 s) or by antialiased bilinear
  resizing. Real digits at H go through the same path for the reference (`reference_statistics`),
  so the round trip's blur is on both sides of the comparison."""
  x = np.asarray(samples, np.float32)
  if x.ndim != 4 or x.shape[-1] != 1:
    raise ValueError(f"digits samples must be [B, H, W, 1], got {x.shape}")
  if centered:
    x = (x + 1.0) / 2.0
  x = np.clip(x, 0.0, 1.0)
  h, w = x.shape[1:3]
  if (h, w) == (IMAGE_SIZE, IMAGE_SIZE):
    return x
  if h == w and h % IMAGE_SIZE == 0:
    s = h // IMAGE_SIZE
    return x.reshape(len(x), IMAGE_SIZE, s, IMAGE_SIZE, s, 1).mean(axis=(2, 4))
  return np.asarray(
    jax.image.resize(x, (len(x), IMAGE_SIZE, IMAGE_SIZE, 1), "linear", antialias=True)
  )


class DigitsMLP(nn.Module):
  """x: [B, 8, 8, 1] in [0, 1] -> (features [B, hidden[-1]], logits [B, 10])."""

  hidden: Sequence[int] = (256, 64)

  @nn.compact
  def __call__(self, x):
    h = x.reshape(x.shape[0], -1) - 0.5
    for width in self.hidden:
      h = nn.gelu(nn.Dense(width)(h))
    return h, nn.Dense(NUM_CLASSES)(h)


def _shift(key, x):
  """Random translations by -1, 0 or +1 pixel in each direction (zeros enter at the border),
  so the features are not tied to exact pixel positions."""
  b = x.shape[0]
  kx, ky = jax.random.split(key)
  dx, dy = (jax.random.randint(k, (b,), -1, 2) for k in (kx, ky))
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))

  def one(img, i, j):
    return jax.lax.dynamic_slice(img, (1 + i, 1 + j, 0), x.shape[1:])

  return jax.vmap(one)(padded, dy, dx)


def train_classifier(
  key: jax.Array,
  x: np.ndarray,
  y: np.ndarray,
  steps: int = 4000,
  batch_size: int = 128,
  learning_rate: float = 2e-3,
  hidden: Sequence[int] = (256, 64),
  augment: bool = True,
):
  """AdamW (cosine-decayed learning rate) on the cross-entropy of DigitsMLP, minibatches drawn
  with replacement; returns params. Deterministic given `key` (one jitted lax.scan)."""
  init_key, loop_key = jax.random.split(key)
  params = DigitsMLP(tuple(hidden)).init(init_key, jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1)))[
    "params"
  ]
  return _train_scan(
    params,
    jax.random.split(loop_key, steps),
    jnp.asarray(x),
    jnp.asarray(y),
    batch_size=batch_size,
    learning_rate=learning_rate,
    hidden=tuple(hidden),
    augment=augment,
  )


@functools.partial(jax.jit, static_argnames=("batch_size", "learning_rate", "hidden", "augment"))
def _train_scan(params, keys, x, y, *, batch_size, learning_rate, hidden, augment):
  model = DigitsMLP(hidden)
  opt = optax.adamw(optax.cosine_decay_schedule(learning_rate, keys.shape[0]), weight_decay=1e-4)

  def loss_fn(p, xb, yb):
    logits = model.apply({"params": p}, xb)[1]
    return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

  def step(carry, k):
    p, s = carry
    kb, ka = jax.random.split(k)
    idx = jax.random.randint(kb, (batch_size,), 0, x.shape[0])
    xb = _shift(ka, x[idx]) if augment else x[idx]
    updates, s = opt.update(jax.grad(loss_fn)(p, xb, y[idx]), s, p)
    return (optax.apply_updates(p, updates), s), None

  return jax.lax.scan(step, (params, opt.init(params)), keys)[0][0]


@dataclasses.dataclass(frozen=True)
class DigitsClassifier:
  """A trained classifier and the train split's reference statistics of its features."""

  params: dict
  hidden: tuple
  ref_mu: np.ndarray  # [F], train split at 8 x 8
  ref_sigma: np.ndarray  # [F, F]
  ref_class_fraction: np.ndarray  # [10], label frequencies of the train split
  test_accuracy: float
  # Reference statistics at other image sizes, computed on first use: size -> (mu, sigma).
  _ref_at_size: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

  def apply(self, x: np.ndarray, batch_size: int = 4096):
    """x: [B, 8, 8, 1] in [0, 1] -> (features [B, F], logits [B, 10]) as float64 numpy."""
    feats, logits = [], []
    for i in range(0, len(x), batch_size):
      f, lg = _apply_mlp(self.hidden, self.params, jnp.asarray(x[i : i + batch_size], jnp.float32))
      feats.append(np.asarray(f, np.float64))
      logits.append(np.asarray(lg, np.float64))
    return np.concatenate(feats), np.concatenate(logits)


def reference_statistics(clf: DigitsClassifier, image_size: int = IMAGE_SIZE):
  """(mu, sigma) of the classifier features of the train split at `image_size`, mapped back to
  8 x 8 by `to_classifier_input` as samples are."""
  if image_size == IMAGE_SIZE:
    return clf.ref_mu, clf.ref_sigma
  if image_size not in clf._ref_at_size:
    train = digits_splits(image_size)["train_x"]
    feats, _ = clf.apply(to_classifier_input(train, centered=False))
    clf._ref_at_size[image_size] = fid.feature_statistics(feats)
  return clf._ref_at_size[image_size]


@functools.partial(jax.jit, static_argnums=0)
def _apply_mlp(hidden, params, x):
  return DigitsMLP(hidden).apply({"params": params}, x)


def build_classifier(
  seed: int = 0,
  steps: int = 4000,
  hidden: Sequence[int] = (256, 64),
  split_seed: int = 0,
  **train_kwargs,
) -> DigitsClassifier:
  """Trains on the train split; reference statistics from the train split; accuracy on test.
  `split_seed` != 0 uses another split (`digits_splits(seed=...)`) for the 8 x 8 statistics;
  the cached classifier and every FD of a model use split 0, the models' own."""
  data = digits_splits(seed=split_seed)
  params = train_classifier(
    jax.random.key(seed),
    data["train_x"],
    data["train_y"],
    steps=steps,
    hidden=hidden,
    **train_kwargs,
  )
  params = jax.tree.map(np.asarray, params)
  partial = DigitsClassifier(params, tuple(hidden), None, None, None, 0.0)
  feats, _ = partial.apply(data["train_x"])
  mu, sigma = fid.feature_statistics(feats)
  _, test_logits = partial.apply(data["test_x"])
  accuracy = float(np.mean(test_logits.argmax(1) == data["test_y"]))
  fraction = np.bincount(data["train_y"], minlength=NUM_CLASSES) / len(data["train_y"])
  return DigitsClassifier(params, tuple(hidden), mu, sigma, fraction, accuracy)


def save_classifier(clf: DigitsClassifier, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  flat = traverse_util.flatten_dict(clf.params, sep="/")
  tmp = path + ".tmp.npz"
  np.savez(
    tmp,
    **{f"params/{k}": v for k, v in flat.items()},
    hidden=np.array(clf.hidden),
    ref_mu=clf.ref_mu,
    ref_sigma=clf.ref_sigma,
    ref_class_fraction=clf.ref_class_fraction,
    test_accuracy=clf.test_accuracy,
  )
  os.replace(tmp, path)  # a killed write never leaves a truncated cache behind


def load_classifier(path: str) -> DigitsClassifier:
  with np.load(path) as f:
    flat = {k[len("params/") :]: f[k] for k in f.files if k.startswith("params/")}
    return DigitsClassifier(
      traverse_util.unflatten_dict(flat, sep="/"),
      tuple(int(h) for h in f["hidden"]),
      f["ref_mu"],
      f["ref_sigma"],
      f["ref_class_fraction"],
      float(f["test_accuracy"]),
    )


def get_classifier(
  path: Optional[str] = None, seed: int = 0, retrain: bool = False, **kwargs
) -> DigitsClassifier:
  """The cached classifier at `path` (default `default_checkpoint(seed)`), trained and saved
  first if missing (or `retrain`)."""
  path = path or default_checkpoint(seed)
  if os.path.exists(path) and not retrain:
    return load_classifier(path)
  clf = build_classifier(seed=seed, **kwargs)
  save_classifier(clf, path)
  return clf


def digits_metrics(
  clf: DigitsClassifier, samples: np.ndarray, centered: bool = False
) -> Dict[str, object]:
  """Quality of digit samples [B, H, W, 1] in the model's space ([-1, 1] if `centered`, else
  [0, 1]): {'digits_fd', 'classifier_score', 'coverage', 'class_fraction' [10],
  'class_coverage' [10], 'num_samples'}; FD against the train split at the same size H."""
  feats, logits = clf.apply(to_classifier_input(samples, centered))
  mu, sigma = fid.feature_statistics(feats)
  mu_ref, sigma_ref = reference_statistics(clf, samples.shape[1])
  fraction = np.bincount(logits.argmax(1), minlength=NUM_CLASSES) / len(logits)
  return {
    "digits_fd": fid.frechet_distance(mu, sigma, mu_ref, sigma_ref),
    "classifier_score": fid.inception_score(logits, num_splits=1)[0],
    "coverage": float(np.minimum(fraction, clf.ref_class_fraction).sum()),
    "class_fraction": fraction,
    "class_coverage": fraction / clf.ref_class_fraction,
    "num_samples": len(samples),
  }


def blur(images: np.ndarray) -> np.ndarray:
  """3x3 binomial blur ([1, 2, 1] / 4 in each direction, edge pixels repeated) of [B, H, W, 1]."""
  p = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  rows = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) / 4
  return (rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 4


def reference_scores(clf: DigitsClassifier, seed: int = 0) -> Dict[str, Dict[str, object]]:
  """digits_metrics of held-out real digits (the test split), of uniform noise and of blurred
  held-out digits, each with as many images as the test split: the scale for a model's FD."""
  test = digits_splits()["test_x"]
  noise = np.random.default_rng(seed).uniform(size=test.shape).astype(np.float32)
  return {
    "held_out": digits_metrics(clf, test),
    "noise": digits_metrics(clf, noise),
    "blurred": digits_metrics(clf, blur(test)),
  }


def main(argv: Sequence[str]) -> None:
  import argparse

  parser = argparse.ArgumentParser(
    prog="python -m score_sde.digits_metric", description=__doc__.split("\n")[0]
  )
  parser.add_argument("--checkpoint", default=None, help="classifier .npz (default: the cache)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--steps", type=int, default=4000)
  parser.add_argument("--retrain", action="store_true")
  parser.add_argument("--samples", default=None, help=".npz with `samples` [B, H, W, 1] or .npy")
  parser.add_argument("--centered", action="store_true", help="samples are in [-1, 1]")
  args = parser.parse_args(argv)
  clf = get_classifier(args.checkpoint, seed=args.seed, retrain=args.retrain, steps=args.steps)
  print(f"digits classifier: held-out accuracy {clf.test_accuracy:.4f}")
  if args.samples:
    arr = np.load(args.samples)
    samples = arr["samples"] if isinstance(arr, np.lib.npyio.NpzFile) else arr
    m = digits_metrics(clf, samples, args.centered)
    rows = {"samples": m}
  else:
    rows = reference_scores(clf, args.seed)
  for name, m in rows.items():
    print(
      f"{name:>9}: digits FD {m['digits_fd']:8.3f}  classifier score "
      f"{m['classifier_score']:5.2f}  coverage {m['coverage']:.3f}  (n = {m['num_samples']})"
    )


if __name__ == "__main__":
  main(sys.argv[1:])
