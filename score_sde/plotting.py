"""Pictures of samples: a scatter plot over real data (2-D data) or an image grid (images)."""
import math

import numpy as np


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")  # files only: no display on servers
  import matplotlib.pyplot as plt
  return plt


def scatter_samples(path: str, samples: np.ndarray, reference: np.ndarray = None, title: str = ""):
  """Writes a PNG scatter of `samples: [n, D]` (first two coordinates) over `reference: [m, D]`."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
  if reference is not None:
    ax.scatter(reference[:, 0], reference[:, 1], s=2, c="0.7", alpha=0.6, label="data")
  ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", alpha=0.6, label="samples")
  pts = samples if reference is None else np.concatenate([samples, reference])
  finite = pts[np.all(np.isfinite(pts[:, :2]), axis=1), :2]
  if len(finite):  # a few diverged samples must not shrink the picture to a dot
    lo, hi = np.percentile(finite, [0.5, 99.5], axis=0)
    pad = 0.1 * (hi - lo) + 1e-3
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
  ax.set_aspect("equal")
  ax.legend(loc="upper right", markerscale=4)
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def image_grid(images: np.ndarray, ncols: int = None, pad: int = 1) -> np.ndarray:
  """images: [n, H, W, C] in [0, 1] -> one [rows (H + pad) + pad, cols (W + pad) + pad, C] grid."""
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), np.float32)
  for k in range(n):
    r, q = divmod(k, ncols)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = images[k]
  return grid


def upscale(grid: np.ndarray, min_side: int = 512) -> np.ndarray:
  """grid: [h, w, C] -> [k h, k w, C], each pixel a k x k block, with the smallest integer k
  that makes the longer side >= min_side (k = 1 when it already is): 8x8 digits stay sharp."""
  k = max(1, -(-min_side // max(grid.shape[:2])))
  return np.repeat(np.repeat(grid, k, axis=0), k, axis=1)


def save_image_grid(path: str, images: np.ndarray, ncols: int = None, min_side: int = 512):
  """Writes `images: [n, H, W, C]` in [0, 1] as one PNG grid (grey for C = 1), upscaled by an
  integer factor (nearest neighbour) to at least `min_side` pixels on its longer side."""
  plt = _pyplot()
  grid = upscale(np.clip(image_grid(images, ncols), 0.0, 1.0), min_side)
  if grid.shape[-1] == 1:
    plt.imsave(path, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
  else:
    plt.imsave(path, grid)


def save_samples_png(path: str, samples: np.ndarray, reference: np.ndarray = None, title: str = ""):
  """Images [n, H, W, C] in [0, 1] -> a grid PNG; anything else [n, D] -> a scatter over `reference`."""
  if samples.ndim == 4:
    save_image_grid(path, samples)
  else:
    scatter_samples(path, samples.reshape(len(samples), -1), reference, title)
