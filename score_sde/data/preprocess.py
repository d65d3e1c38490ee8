"""Image preprocessing shared by every image data set (digits, TFDS, folders).

uint8 pixels k in {0, ..., 255} become
    x = (k + u) / 256, u ~ U(0, 1)    with uniform dequantization,
    x = k / 255                       without,
then optionally centred x -> 2 x - 1 (data in [-1, 1]) and mirrored left-right with probability 1/2.
"""

import numpy as np


def preprocess_images(
  images: np.ndarray,
  rng: np.random.Generator,
  *,
  centered: bool,
  uniform_dequantization: bool,
  random_flip: bool,
) -> np.ndarray:
  """images: uint8 [B, H, W, C] -> float32 [B, H, W, C] in [0, 1] (or [-1, 1] when centered)."""
  if images.dtype != np.uint8:
    raise TypeError(f"preprocess_images expects uint8 pixels, got {images.dtype}")
  x = images.astype(np.float32)
  if uniform_dequantization:
    x = (x + rng.uniform(size=x.shape).astype(np.float32)) / 256.0
  else:
    x = x / 255.0
  if random_flip:
    flip = rng.uniform(size=(x.shape[0],)) < 0.5
    x = np.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
  if centered:
    x = 2.0 * x - 1.0
  return x.astype(np.float32)


def postprocess_images(x: np.ndarray, centered: bool) -> np.ndarray:
  """Inverse scaling for display: model space -> [0, 1], clipped."""
  x = (x + 1.0) / 2.0 if centered else x
  return np.clip(x, 0.0, 1.0)
