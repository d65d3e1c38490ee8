"""Image data sets: user image folders / zips (numpy + PIL) and the tf.data sets (TFDS, TFRecords).

Exact checks throughout: decoded pixels equal the written ones; x = k / 255 without and
x = (k + u) / 256, u in [0, 1), with dequantization (so 256 x - k lies in [0, 1) for the same
batch drawn twice); a flipped example is exactly its mirror image; host shards are disjoint and
together are the whole split; an epoch visits every image once; a resumed stream equals the
uninterrupted one (image folders). TFDS sets are mocked (`tfds.testing.mock_data`, no download)
or written to tmp_path; tests that need TensorFlow skip without it.
"""

import os
import sys
import zipfile

import numpy as np
import pytest

from score_sde.data import DATASETS, DataSpec, get_dataset


def _png(path, array):
  from PIL import Image

  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path)


def _images(n, h, w, c=3, seed=0):
  arr = np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
  return arr if c == 3 else arr[..., 0]


def _folder(tmp_path, n=6, size=8, c=3):
  """n PNGs of size x size written to tmp_path/imgs, returned in file order."""
  arr = _images(n, size, size, c)
  for i in range(n):
    _png(str(tmp_path / "imgs" / f"img_{i:02d}.png"), arr[i])
  return str(tmp_path / "imgs"), arr.reshape(n, size, size, c)


def _spec(name="image_folder", **kw):
  base = dict(image_size=8, num_channels=3)
  base.update(kw)
  return DataSpec(name, **base)


def _as_uint8(x):
  """Inverts x = k / 255 exactly (to float32 rounding)."""
  k = np.round(x * 255.0)
  np.testing.assert_allclose(x * 255.0, k, atol=1e-3)
  return k.astype(np.uint8)


# Image folders ---------------------------------------------------------------------------------


def test_image_folder_decodes_the_written_pixels(tmp_path):
  root, arr = _folder(tmp_path)
  ds = get_dataset(_spec(data_dir=root), "train")
  assert ds.shape == (8, 8, 3) and ds.is_image and ds.num_examples == 6
  batches = list(ds.epoch(4))
  assert [b.shape for b in batches] == [(4, 8, 8, 3), (2, 8, 8, 3)]
  assert all(b.dtype == np.float32 for b in batches)
  np.testing.assert_array_equal(_as_uint8(np.concatenate(batches)), arr)
  centered = np.concatenate(
    list(get_dataset(_spec(data_dir=root, centered=True), "train").epoch(6))
  )
  np.testing.assert_allclose(centered, 2 * np.concatenate(batches) - 1, atol=1e-6)
  assert centered.min() >= -1 and centered.max() <= 1


def test_image_folder_crops_the_central_square_and_resizes(tmp_path):
  from PIL import Image

  wide = _images(1, 8, 12)[0]  # h = 8, w = 12: the central square is columns 2..9
  _png(str(tmp_path / "d" / "wide.png"), wide)
  got = next(get_dataset(_spec(data_dir=str(tmp_path / "d")), "test").epoch(1))[0]
  np.testing.assert_array_equal(_as_uint8(got), wide[:, 2:10])
  # A larger image is resized (bicubic) after the crop, to the requested size.
  big = _images(1, 20, 16)[0]
  _png(str(tmp_path / "e" / "big.png"), big)
  got = next(get_dataset(_spec(data_dir=str(tmp_path / "e"), image_size=4), "test").epoch(1))[0]
  ref = np.asarray(Image.fromarray(big[2:18]).resize((4, 4), Image.Resampling.BICUBIC))
  np.testing.assert_array_equal(_as_uint8(got), ref)


def test_image_folder_zip_and_greyscale(tmp_path):
  root, arr = _folder(tmp_path)
  zpath = str(tmp_path / "imgs.zip")
  with zipfile.ZipFile(zpath, "w") as zf:
    for name in sorted(os.listdir(root)):
      zf.write(os.path.join(root, name), arcname=f"faces/{name}")
    zf.writestr("faces/notes.txt", "not an image")
  from_zip = np.concatenate(list(get_dataset(_spec(data_dir=zpath), "train").epoch(6)))
  np.testing.assert_array_equal(_as_uint8(from_zip), arr)
  grey_root, grey = _folder(tmp_path / "g", c=1)
  got = np.concatenate(
    list(get_dataset(_spec(data_dir=grey_root, num_channels=1), "train").epoch(6))
  )
  assert got.shape == (6, 8, 8, 1)
  np.testing.assert_array_equal(_as_uint8(got), grey)


def test_image_folder_train_and_test_subfolders_are_the_splits(tmp_path):
  arr = _images(5, 8, 8)
  for i in range(5):
    _png(str(tmp_path / "r" / ("train" if i < 3 else "test") / f"{i}.png"), arr[i])
  root = str(tmp_path / "r")
  train = np.concatenate(list(get_dataset(_spec(data_dir=root), "train").epoch(8)))
  test = np.concatenate(list(get_dataset(_spec(data_dir=root), "test").epoch(8)))
  np.testing.assert_array_equal(_as_uint8(train), arr[:3])
  np.testing.assert_array_equal(_as_uint8(test), arr[3:])


def test_image_folder_epochs_resume_and_shards(tmp_path):
  root, arr = _folder(tmp_path, n=8)
  ds = get_dataset(_spec(data_dir=root), "train")
  stream = ds.batches(4, start_step=0, seed=3)
  first = [_as_uint8(next(stream)) for _ in range(6)]
  keys = lambda batch: sorted(im.tobytes() for im in batch)  # noqa: E731
  every = sorted(im.tobytes() for im in arr)
  for epoch in range(3):  # two batches of 4 = one epoch of 8, without replacement
    assert keys(np.concatenate(first[2 * epoch : 2 * epoch + 2])) == every
  resumed = ds.batches(4, start_step=3, seed=3)
  for k in range(3, 6):
    np.testing.assert_array_equal(_as_uint8(next(resumed)), first[k])
  # Two hosts: disjoint halves whose union is the split; each host's batches come from its half.
  shards = [ds.images(p, 2) for p in range(2)]
  assert set(keys(shards[0])).isdisjoint(keys(shards[1]))
  assert keys(np.concatenate(shards)) == every
  host1 = _as_uint8(next(ds.batches(4, 0, 3, process_index=1, process_count=2)))
  assert host1.shape == (2, 8, 8, 3) and set(keys(host1)) <= set(keys(shards[1]))


def _check_flip_and_dequantization(make_stream):
  """make_stream(random_flip, uniform_dequantization) -> first batch, for one fixed seed."""
  plain = make_stream(False, False)
  k = _as_uint8(plain)
  flipped = make_stream(True, False)
  mirror = plain[:, :, ::-1, :]
  is_plain = np.all(flipped == plain, axis=(1, 2, 3))
  is_mirror = np.all(flipped == mirror, axis=(1, 2, 3))
  assert np.all(is_plain | is_mirror)
  # Each example flips with probability 1/2: with n examples, all-or-none has probability 2^(1-n).
  assert is_mirror.any() and not is_mirror.all()
  dq = make_stream(False, True)
  gap = 256.0 * dq - k.astype(np.float64)
  assert gap.min() >= 0.0 and gap.max() < 1.0
  # Uniform on [0, 1): mean 1/2, sd 1/sqrt(12) / sqrt(N); 6 sd tolerance.
  assert abs(gap.mean() - 0.5) < 6 * (12 * gap.size) ** -0.5


def test_image_folder_flips_and_dequantization(tmp_path):
  root, _ = _folder(tmp_path, n=40)

  def first(random_flip, uniform_dequantization):
    spec = _spec(
      data_dir=root, random_flip=random_flip, uniform_dequantization=uniform_dequantization
    )
    return next(get_dataset(spec, "train").batches(32, 0, seed=1))

  _check_flip_and_dequantization(first)


def test_image_folder_errors(tmp_path):
  with pytest.raises(ValueError, match="data_dir"):
    get_dataset(_spec(), "train").paths()
  with pytest.raises(FileNotFoundError):
    get_dataset(_spec(data_dir=str(tmp_path / "missing")), "train").paths()
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="no"):
    get_dataset(_spec(data_dir=str(tmp_path / "empty")), "train").paths()


def test_tf_sets_say_how_to_install_tensorflow(monkeypatch):
  from score_sde.data import tfds_images

  monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
  with pytest.raises(ImportError, match=r"pip install 'score_sde\[tf\]'"):
    tfds_images.import_tf()
  assert {
    "cifar10",
    "svhn",
    "celeba",
    "lsun_bedroom",
    "lsun_church_outdoor",
    "celebahq",
    "ffhq",
  } <= set(DATASETS)


# tf.data sets --------------------------------------------------------------------------------


def test_tfds_cifar10_mocked(monkeypatch):
  pytest.importorskip("tensorflow")
  tfds = pytest.importorskip("tensorflow_datasets")
  from score_sde.data import tfds_images

  monkeypatch.setattr(
    tfds_images, "SHUFFLE_BUFFER", 64
  )  # filling 10,000 would take 250 mock epochs
  # mock_data serves examples without preparing the set; the runner requires preparation.
  monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
  with tfds.testing.mock_data(num_examples=40):

    def first(random_flip, uniform_dequantization, centered=False):
      spec = _spec(
        "cifar10",
        image_size=32,
        random_flip=random_flip,
        centered=centered,
        uniform_dequantization=uniform_dequantization,
      )
      return next(get_dataset(spec, "train").batches(32, 0, seed=5))

    plain = first(False, False)
    assert plain.shape == (32, 32, 32, 3) and plain.dtype == np.float32
    assert plain.min() >= 0.0 and plain.max() <= 1.0
    np.testing.assert_allclose(first(False, False, centered=True), 2 * plain - 1, atol=1e-6)
    _check_flip_and_dequantization(first)
    # Downsized on request; an ordered pass yields the 40 examples once.
    small = get_dataset(_spec("cifar10", image_size=16), "test")
    assert [b.shape for b in small.epoch(16)] == [(16, 16, 16, 3)] * 2 + [(8, 16, 16, 3)]


def test_celeba_and_lsun_crops():
  tf = pytest.importorskip("tensorflow")
  from score_sde.data import tfds_images as T

  img = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
  # The crop alone (image_size 140): rows 39..178, columns 19..158 of the 218 x 178 image.
  np.testing.assert_array_equal(
    T.celeba_resize(tf, tf.constant(img), 140).numpy(), img[39:179, 19:159]
  )
  out = T.celeba_resize(tf, tf.constant(img), 64)
  assert out.shape == (64, 64, 3) and out.dtype == tf.uint8
  # A constant image stays constant through any resize (the kernels sum to one).
  flat = tf.fill((218, 178, 3), tf.constant(77, tf.uint8))
  np.testing.assert_array_equal(T.celeba_resize(tf, flat, 64).numpy(), 77)
  np.testing.assert_array_equal(
    T.lsun_resize(tf, tf.fill((90, 150, 3), tf.constant(9, tf.uint8)), 64), 9
  )
  # LSUN at 128: shorter side to 128 then the central crop; an image 128 high is only cropped.
  wide = np.random.default_rng(1).integers(0, 256, (128, 200, 3), dtype=np.uint8)
  np.testing.assert_array_equal(T.lsun_resize(tf, tf.constant(wide), 128).numpy(), wide[:, 36:164])
  # Otherwise the largest central square, resized: a square image of the right size is unchanged.
  sq = np.random.default_rng(2).integers(0, 256, (64, 100, 3), dtype=np.uint8)
  np.testing.assert_array_equal(T.lsun_resize(tf, tf.constant(sq), 64).numpy(), sq[:, 18:82])


def test_tfds_host_shards_are_disjoint(tmp_path):
  tf = pytest.importorskip("tensorflow")
  tfds = pytest.importorskip("tensorflow_datasets")
  from score_sde.data import tfds_images as T

  arr = np.zeros((10, 8, 8, 3), np.uint8)
  arr[:, 0, 0, 0] = np.arange(10)  # example i is marked by its first pixel
  tfds.dataset_builders.store_as_tfds_dataset(
    name="tiny_images",
    version="1.0.0",
    data_dir=str(tmp_path),
    features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(8, 8, 3))}),
    split_datasets={"train": tf.data.Dataset.from_tensor_slices({"image": arr})},
  )
  ds = T.TFImageDataset(
    _spec("tiny", data_dir=str(tmp_path)), "train", T.TFDSSource("tiny_images", "train", "train")
  )
  assert ds.num_examples == 10
  marks = []
  for p in range(3):
    shard = np.stack(list(ds._records(p, 3, shuffle_files=False, seed=0).as_numpy_iterator()))
    marks.append(set(shard[:, 0, 0, 0].tolist()))
  assert all(marks[i].isdisjoint(marks[j]) for i in range(3) for j in range(i))
  assert set().union(*marks) == set(range(10))
  batch = next(ds.batches(4, 0, seed=0, process_index=1, process_count=2))
  assert batch.shape == (2, 8, 8, 3)


def _write_tfrecords(tf, path, images_hwc):
  with tf.io.TFRecordWriter(path) as w:
    for im in images_hwc:
      chw = np.ascontiguousarray(im.transpose(2, 0, 1))
      feat = {
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(chw.shape))),
        "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chw.tobytes()])),
      }
      w.write(tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString())


def test_celebahq_tfrecords(tmp_path):
  tf = pytest.importorskip("tensorflow")
  arr = _images(7, 8, 8)
  path = str(tmp_path / "celebahq-r03.tfrecords")
  _write_tfrecords(tf, path, arr)
  ds = get_dataset(_spec("celebahq", data_dir=path), "train")
  assert ds.shape == (8, 8, 3) and ds.num_examples is None
  np.testing.assert_array_equal(_as_uint8(np.concatenate(list(ds.epoch(3)))), arr)
  batch = next(ds.batches(6, 0, seed=0))
  assert batch.shape == (6, 8, 8, 3) and 0 <= batch.min() and batch.max() <= 1
  # Two hosts read disjoint records that together are the file.
  from score_sde.data import tfds_images as T

  shards = [np.stack(list(ds._records(p, 2, False, 0).as_numpy_iterator())) for p in range(2)]
  keys = [{im.tobytes() for im in s} for s in shards]
  assert keys[0].isdisjoint(keys[1]) and keys[0] | keys[1] == {im.tobytes() for im in arr}
  # Records at another resolution are resized to image_size.
  assert next(get_dataset(_spec("ffhq", data_dir=path, image_size=4), "train").epoch(7)).shape == (
    7,
    4,
    4,
    3,
  )
  with pytest.raises(ValueError, match="data_dir"):
    next(get_dataset(_spec("ffhq"), "train").epoch(2))
  assert isinstance(T.SOURCES["ffhq"], T.TFRecordSource)


@pytest.mark.parametrize(
  "name,size", [("celeba", 64), ("lsun_bedroom", 128), ("lsun_church_outdoor", 64), ("svhn", 32)]
)
def test_tfds_sets_mocked_end_to_end(monkeypatch, name, size):
  """The whole pipeline of each TFDS set on mock examples (mock images of the real shapes:
  celeb_a 218 x 178, lsun of varying sizes): shapes, [-1, 1] range, an epoch of every example."""
  pytest.importorskip("tensorflow")
  tfds = pytest.importorskip("tensorflow_datasets")
  from score_sde.data import tfds_images

  monkeypatch.setattr(tfds_images, "SHUFFLE_BUFFER", 16)
  # mock_data serves examples without preparing the set; the runner requires preparation.
  monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
  with tfds.testing.mock_data(num_examples=12):
    ds = get_dataset(_spec(name, image_size=size, centered=True, random_flip=True), "train")
    batch = next(ds.batches(8, 0, seed=0))
    assert batch.shape == (8, size, size, 3) and batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    test = np.concatenate(list(get_dataset(_spec(name, image_size=size), "test").epoch(5)))
    assert test.shape == (12, size, size, 3)


def test_unprepared_tfds_set_fails_at_once_with_the_build_command(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  from score_sde import runner_utils as ru
  from score_sde.validate import validate

  # In this file with the other TensorFlow tests: TensorFlow's import (seconds) happens once.
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = ru.load_config(os.path.join(repo, "configs", "toy", "vp_eight_gaussians.py"))
  config.data.update(name="cifar10", data_dir=str(tmp_path), num_channels=3)
  with pytest.raises(FileNotFoundError, match=rf"run `tfds build cifar10 --data_dir={tmp_path}`"):
    validate(config, "train")
  validate(config, "sample")  # sampling reads no data
