"""The offline digits metric: held-out real digits score far better than noise or blur, the
classifier generalises, training is deterministic, and model-space samples map correctly."""

import numpy as np
import pytest

from score_sde import digits_metric as dm
from score_sde.data.preprocess import preprocess_images

STEPS = 300  # a quick classifier (a few seconds); the command trains 4000 steps by default


@pytest.fixture(scope="module")
def clf():
  return dm.build_classifier(seed=0, steps=STEPS)


def test_classifier_generalises_to_the_held_out_split(clf):
  assert clf.test_accuracy > 0.85  # chance is 0.1; 4000 steps reach ~0.98


def test_held_out_digits_score_far_better_than_noise_and_blur(clf):
  """FD(held-out real) << FD(blurred held-out) << FD(uniform noise), all with the 180 test
  images; the classifier score ranks them the same way."""
  ref = dm.reference_scores(clf)
  held, blurred, noise = ref["held_out"], ref["blurred"], ref["noise"]
  assert 3 * held["digits_fd"] < blurred["digits_fd"]
  assert 3 * blurred["digits_fd"] < noise["digits_fd"]
  assert 20 * held["digits_fd"] < noise["digits_fd"]
  assert held["classifier_score"] > blurred["classifier_score"] > noise["classifier_score"]
  assert held["coverage"] > 0.8


def test_training_is_deterministic_given_the_seed(clf):
  data = dm.digits_splits()
  again = dm.train_classifier(dm.jax.random.key(0), data["train_x"], data["train_y"], steps=STEPS)
  for a, b in zip(dm.jax.tree.leaves(again), dm.jax.tree.leaves(clf.params)):
    np.testing.assert_array_equal(np.asarray(a), b)


def test_model_space_samples_map_like_the_data_pipeline(clf):
  """Held-out digits through the training pipeline (centred, dequantized; at 8 and 16 pixels)
  score like the [0, 1] digits themselves: the metric undoes the model's data range."""
  for size in (8, 16):
    test = dm.digits_splits(size)["test_x"]
    pixels = np.round(test * 255).astype(np.uint8)
    model_space = preprocess_images(
      pixels,
      np.random.default_rng(0),
      centered=True,
      uniform_dequantization=True,
      random_flip=False,
    )
    got = dm.digits_metrics(clf, model_space, centered=True)["digits_fd"]
    want = dm.digits_metrics(clf, test)["digits_fd"]
    assert got == pytest.approx(want, rel=0.05)
  # Forgetting the centring (values in [-1, 1] read as [0, 1]) is heavily penalised.
  wrong = dm.digits_metrics(clf, model_space, centered=False)["digits_fd"]
  assert wrong > 3 * want


def test_coverage_sees_a_single_class(clf):
  """One image repeated: every prediction is one class c, so coverage = its data frequency
  r_c (about 0.1), class_coverage is 0 for the nine others and the classifier score is 1."""
  data = dm.digits_splits()
  same = np.repeat(data["test_x"][:1], 50, axis=0)
  m = dm.digits_metrics(clf, same)
  c = int(np.argmax(m["class_fraction"]))
  assert m["class_fraction"][c] == 1.0
  assert m["coverage"] == pytest.approx(clf.ref_class_fraction[c])
  assert np.sum(m["class_coverage"] == 0) == 9
  assert m["classifier_score"] == pytest.approx(1.0, abs=1e-9)


def test_checkpoint_round_trip(clf, tmp_path):
  path = str(tmp_path / "clf.npz")
  dm.save_classifier(clf, path)
  loaded = dm.get_classifier(path)
  test = dm.digits_splits()["test_x"]
  assert dm.digits_metrics(loaded, test)["digits_fd"] == dm.digits_metrics(clf, test)["digits_fd"]
  assert loaded.test_accuracy == clf.test_accuracy


def test_split_seeds_partition_the_same_digits():
  """Seed 0 is the split the models train on (`data.digits`); another seed is another 90% / 10%
  partition of the same 1797 digits (experiments/heldout_fd_spread.py redraws the held-out bar
  with these)."""
  from score_sde.data.base import DataSpec
  from score_sde.data.digits import DigitsDataset

  base, other = dm.digits_splits(), dm.digits_splits(seed=1)
  pipeline = DigitsDataset(DataSpec("digits"), "train").images()
  np.testing.assert_array_equal(np.round(base["train_x"] * 255).astype(np.uint8), pipeline)

  def rows(x):
    return {r.tobytes() for r in np.round(x * 255).astype(np.uint8).reshape(len(x), -1)}

  assert len(other["test_x"]) == len(base["test_x"]) == 180
  everything = np.concatenate([base["train_x"], base["test_x"]])
  assert rows(np.concatenate([other["train_x"], other["test_x"]])) == rows(everything)
  assert rows(other["test_x"]) != rows(base["test_x"])
