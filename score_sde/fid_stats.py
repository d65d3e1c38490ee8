"""Data-set statistics for FID: mean and covariance of Inception pool3 features, saved as .npz.

    # the data set of an experiment config (any registered data set: cifar10, celeba, digits...)
    python -m score_sde.fid_stats --config configs/vp/cifar10_ddpmpp_continuous.py \
        --weights inception_fid.npz --output cifar10_train_stats.npz [--split train]
    # a folder (or .zip) of PNG / JPEG images, centre-cropped and resized to --image_size
    python -m score_sde.fid_stats --image_folder samples/ --image_size 32 \
        --weights inception_fid.npz --output samples_stats.npz

`--weights` is the .npz converted from pytorch-fid's weights (see `score_sde.inception`). The
images go through the data set's own pipeline without dequantization noise or flips, are mapped
to [0, 1] and fed to the network in batches split over all devices. The output holds `mu`
[2048], `sigma` [2048, 2048] and `num_images`; with --save_features also `features` [n, 2048]
(needed for KID). FID against such a file: `fid.fid_from_features(features, mu, sigma)`.
"""

import dataclasses
import sys
from typing import Iterator

import numpy as np
from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config: its data set is used.")
flags.DEFINE_string("image_folder", None, "A folder or .zip of images (instead of --config).")
flags.DEFINE_integer("image_size", 0, "With --image_folder: crop and resize images to this.")
flags.DEFINE_integer("num_channels", 3, "With --image_folder: 3 (RGB) or 1 (grey).")
flags.DEFINE_enum("split", "train", ["train", "test"], "Which split of the data set.")
flags.DEFINE_string("weights", None, "Inception weights .npz (see score_sde.inception).")
flags.DEFINE_string("output", None, "Where to write the statistics .npz.")
flags.DEFINE_integer("batch_size", 200, "Images per forward pass (over all devices).")
flags.DEFINE_integer("max_images", 0, "Use at most this many images (0: all).")
flags.DEFINE_bool("save_features", False, "Also save the pool3 features (for KID).")


def unit_interval_batches(
  spec, split: str, batch_size: int, max_images: int = 0
) -> Iterator[np.ndarray]:
  """The split's images in [0, 1], [b, H, W, C], in order: the data set's preprocessing without
  dequantization noise or flips, uncentred."""
  from score_sde.data import get_dataset
  from score_sde.data.preprocess import postprocess_images

  spec = dataclasses.replace(spec, uniform_dequantization=False, random_flip=False)
  seen = 0
  for batch in get_dataset(spec, split).epoch(batch_size):
    if max_images:
      batch = batch[: max_images - seen]
    yield postprocess_images(np.asarray(batch), spec.centered)
    seen += len(batch)
    if max_images and seen >= max_images:
      return


def compute_statistics(variables, batches, save_features: bool = False):
  """{'mu': [2048], 'sigma': [2048, 2048], 'num_images': n (, 'features': [n, 2048])}."""
  from score_sde import fid, inception

  feats = inception.inception_outputs(variables, batches)["pool3"]
  mu, sigma = fid.feature_statistics(feats)
  out = {"mu": mu, "sigma": sigma, "num_images": np.array(len(feats))}
  if save_features:
    out["features"] = feats.astype(np.float32)
  return out


def main(argv):
  del argv
  from score_sde import inception
  from score_sde.data.base import DataSpec

  if not FLAGS.weights or not FLAGS.output:
    raise ValueError("set --weights (Inception .npz) and --output")
  if (FLAGS.config is None) == (FLAGS.image_folder is None):
    raise ValueError("give exactly one of --config and --image_folder")
  if FLAGS.image_folder:
    if FLAGS.image_size <= 0:
      raise ValueError("--image_folder needs --image_size (the size images are resized to)")
    spec = DataSpec(
      name="image_folder",
      image_size=FLAGS.image_size,
      num_channels=FLAGS.num_channels,
      data_dir=FLAGS.image_folder,
    )
  else:
    spec = DataSpec.from_config(FLAGS.config.data)
  variables = inception.load_inception_variables(FLAGS.weights)
  batches = unit_interval_batches(spec, FLAGS.split, FLAGS.batch_size, FLAGS.max_images)
  stats = compute_statistics(variables, batches, FLAGS.save_features)
  np.savez(FLAGS.output, **stats)
  n = int(stats["num_images"])
  print(f"wrote Inception statistics of {n} images ({spec.name}, {FLAGS.split}) to {FLAGS.output}")
  if n < 50_000:
    print(
      f"note: {n} < 50000 images; FIDs against these statistics are not comparable with "
      "published 50k-sample numbers",
      file=sys.stderr,
    )


if __name__ == "__main__":
  try:
    app.run(main)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
