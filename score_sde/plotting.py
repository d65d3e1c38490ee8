"""Pictures: samples (a scatter over real data for 2-D data, an image grid for images), the
density of 2-D samples next to the exact density of a toy, and loss curves from metrics.jsonl.

    python -m score_sde.plotting loss WORKDIR [WORKDIR ...] [--out loss.png]
    python -m score_sde.plotting density SAMPLES.npz --toy eight_gaussians [--out density.png]
"""

import json
import math
import os
import sys

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
  ax.set_title(title, fontsize="small", wrap=True)  # run names can be long
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
    grid[
      pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w
    ] = images[k]
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
  # Written as uint8 round(255 v), the pixels the .npz `images` hold: a float image through
  # matplotlib's colormap lands up to 2 levels lower (its 8-bit lookup table truncates).
  pixels = np.round(255.0 * grid).astype(np.uint8)
  if pixels.shape[-1] == 1:
    pixels = np.repeat(pixels, 3, axis=-1)
  plt.imsave(path, pixels)


def save_samples_png(path: str, samples: np.ndarray, reference: np.ndarray = None, title: str = ""):
  """Images [n, H, W, C] in [0, 1] -> a grid PNG; anything else [n, D] -> a scatter over `reference`."""
  if samples.ndim == 4:
    save_image_grid(path, samples)
  else:
    scatter_samples(path, samples.reshape(len(samples), -1), reference, title)


def histogram_density(x: np.ndarray, extent, bins: int):
  """The 2-D histogram of points x: [n, 2] on a bins x bins grid over `extent` = (xmin, xmax,
  ymin, ymax), as a density: count / (n * cell area), so that sum(density) * cell area is the
  fraction of points inside the window. Returns (density [bins, bins] indexed [ix, iy], cell
  centres [bins, bins, 2])."""
  xe = np.linspace(extent[0], extent[1], bins + 1)
  ye = np.linspace(extent[2], extent[3], bins + 1)
  hist, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=(xe, ye))
  cell = (xe[1] - xe[0]) * (ye[1] - ye[0])
  xc, yc = (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2
  return hist / (len(x) * cell), np.stack(np.meshgrid(xc, yc, indexing="ij"), -1)


def density_comparison(
  path: str, samples: np.ndarray, log_density, extent=None, bins: int = 120, title: str = ""
):
  """Writes a PNG of three panels: the samples `[n, 2]` as points, their 2-D histogram (density
  estimate, normalised so that it integrates to 1 over the window) and the exact density
  p(x) = exp(log_density(x)) on the same grid and colour scale. `log_density: [m, 2] -> [m]`.
  `extent = (xmin, xmax, ymin, ymax)`; by default the 0.5-99.5 percentiles of the samples, padded."""
  plt = _pyplot()
  x = np.asarray(samples, np.float64).reshape(len(samples), -1)[:, :2]
  x = x[np.all(np.isfinite(x), axis=1)]
  if extent is None:
    lo, hi = np.percentile(x, [0.5, 99.5], axis=0)
    pad = 0.1 * (hi - lo) + 1e-3
    extent = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
  hist, centers = histogram_density(x, extent, bins)
  exact = np.exp(np.asarray(log_density(centers.reshape(-1, 2)))).reshape(hist.shape)
  vmax = max(float(np.percentile(exact, 99.9)), 1e-12)
  fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), dpi=110)
  axes[0].scatter(x[:, 0], x[:, 1], s=1, c="tab:blue", alpha=0.4)
  axes[0].set_xlim(extent[:2])
  axes[0].set_ylim(extent[2:])
  axes[0].set_title(f"samples (n = {len(x)})")
  for ax, img, name in ((axes[1], hist, "histogram of samples"), (axes[2], exact, "exact density")):
    im = ax.imshow(
      img.T,
      origin="lower",
      extent=extent,
      cmap="viridis",
      vmin=0.0,
      vmax=vmax,
      aspect="auto",
      interpolation="nearest",
    )
    ax.set_title(name)
  for ax in axes:
    ax.set_aspect("equal")
  fig.colorbar(im, ax=axes[1:].tolist(), shrink=0.85, label="density")
  if title:
    fig.suptitle(title)
  fig.savefig(path, bbox_inches="tight")
  plt.close(fig)


def read_metrics(workdir_or_file: str) -> list:
  """The records of a run's metrics.jsonl (a workdir or the file), in file order; lines cut
  short by a kill are skipped."""
  path = workdir_or_file
  if os.path.isdir(path):
    path = os.path.join(path, "metrics.jsonl")
  records = []
  with open(path) as f:
    for line in f:
      try:
        rec = json.loads(line)
      except ValueError:
        continue
      if isinstance(rec, dict) and "step" in rec:
        records.append(rec)
  return records


def loss_curve(path: str, runs: dict, key: str = "loss", log_y: bool = None, title: str = ""):
  """Writes a PNG of `key` against the step for each run in `runs: {label: records}`
  (records as from `read_metrics`; null values are left out). The y axis is logarithmic by
  default when every value is positive and they span more than a factor of 10."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
  values = []
  for label, records in runs.items():
    pts = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    if not pts:
      continue
    steps, ys = zip(*sorted(pts))
    values.extend(ys)
    ax.plot(steps, ys, marker="." if len(pts) < 40 else None, label=label)
  if not values:
    plt.close(fig)
    raise ValueError(f"no {key!r} values to plot")
  v = np.asarray(values, np.float64)
  if log_y is None:
    log_y = bool(np.all(v > 0) and v.max() > 10 * v.min())
  if log_y:
    ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel(key + (" (log scale)" if log_y else ""))
  ax.grid(True, alpha=0.3)
  if len(runs) > 1:
    ax.legend()
  ax.set_title(title or f"training {key}")
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def main(argv) -> None:
  import argparse

  parser = argparse.ArgumentParser(
    prog="python -m score_sde.plotting", description=__doc__.split("\n")[0]
  )
  sub = parser.add_subparsers(dest="command", required=True)
  lp = sub.add_parser("loss", help="loss curve(s) from metrics.jsonl")
  lp.add_argument("runs", nargs="+", help="workdirs or metrics.jsonl files")
  lp.add_argument("--key", default="loss", help="metrics field (loss, loss_last, grad_norm)")
  lp.add_argument("--out", default=None, help="PNG (default: <first workdir>/loss.png)")
  dp = sub.add_parser("density", help="samples' histogram next to a toy's exact density")
  dp.add_argument("samples", help=".npz with `samples` [n, 2] (as the sample mode writes)")
  dp.add_argument("--toy", required=True, help="the toy data set (score_sde.toy_metrics)")
  dp.add_argument("--out", default=None, help="PNG (default: <samples>_density.png)")
  args = parser.parse_args(argv)
  if args.command == "loss":
    runs = {os.path.basename(os.path.normpath(r)) or r: read_metrics(r) for r in args.runs}
    first = args.runs[0]
    out = args.out or os.path.join(
      first if os.path.isdir(first) else os.path.dirname(first), f"{args.key}.png"
    )
    loss_curve(out, runs, args.key)
  else:
    from score_sde.toy_metrics import toy_log_density

    samples = np.load(args.samples)["samples"]
    out = args.out or os.path.splitext(args.samples)[0] + "_density.png"
    density_comparison(out, samples, lambda x: toy_log_density(args.toy, x), title=args.toy)
  print(f"wrote {out}")


if __name__ == "__main__":
  main(sys.argv[1:])
