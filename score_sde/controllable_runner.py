"""`--mode sample` with `sampling.condition` set: controllable generation from a workdir.

    score-sde --config configs/digits/class_guided.py --workdir runs/digits --mode sample
    score-sde --config configs/digits/inpaint.py --workdir runs/digits --mode sample \
        --config.sampling.inputs=digits.npz --config.sampling.mask=center

Conditions (score_sde/controllable.py):
  class     unconditional score + guidance_scale * grad log p_t(y | x) of the noise-conditional
            classifier in <workdir>/classifier (--mode train_classifier);
  cfg       classifier-free guidance of a label-conditional network (model.num_classes > 0):
            eps_u + w (eps_c - eps_u), w = guidance_scale, in eps or score form (sampling.cfg_form);
  inpaint   the known pixels (mask 1) of `sampling.inputs` re-noised and imposed at every step;
  colorize  RGB samples keeping the grey level of `sampling.inputs` (decoupled colour space).
Labels: `sampling.classes` ("3,7"; default every class), assigned to the samples in turn. Inputs:
an .npz with 'images' (uint8 [N, H, W, C], or floats in [0, 1]), an image file or a folder of
them; default: the data set's test split. Masks: left_half | center | random_pixels, an .npz with
'mask' ([H, W], [H, W, C] or [N, H, W, C], 1 = known) or an image (white = known).

Writes <workdir>/controllable_<step>_<condition>.npz (samples, labels or inputs and masks) and a
PNG grid: one row per class, or rows of inputs / masked inputs / samples.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from score_sde import controllable as ctl, runner_utils as ru
from score_sde.data import get_dataset
from score_sde.data.preprocess import postprocess_images
from score_sde.sampling import sampler_from_config
from score_sde.sampling.base import run_loop
from score_sde.sde import bcast


def parse_classes(s, num_classes: int):
  """sampling.classes ('3,7' or None: all) -> list of ints, each in [0, num_classes)."""
  if s is None or s == "":
    return list(range(num_classes))
  classes = [int(c) for c in str(s).replace(" ", "").split(",") if c != ""]
  bad = [c for c in classes if not 0 <= c < num_classes]
  if bad or not classes:
    raise ValueError(f"sampling.classes={s!r}: classes must be in [0, {num_classes})")
  return classes


def builtin_mask(name: str, shape) -> np.ndarray:
  """[H, W, 1] masks, 1 = known: left_half (the left columns known), center (a central square
  of half the side unknown), random_pixels (a fixed 25% of pixels known)."""
  h, w = shape[0], shape[1]
  m = np.ones((h, w, 1), np.float32)
  if name == "left_half":
    m[:, w // 2 :] = 0.0
  elif name == "center":
    m[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = 0.0
  elif name == "random_pixels":
    m = (np.random.default_rng(0).uniform(size=(h, w, 1)) < 0.25).astype(np.float32)
  else:
    raise ValueError(
      f"unknown mask {name!r}; choose from ['center', 'left_half', "
      "'random_pixels'] or give an .npz / image file"
    )
  return m


def _load_image_files(path: str, size: int, channels: int) -> np.ndarray:
  from score_sde.data.image_folder import load_image

  paths = (
    [path]
    if os.path.isfile(path)
    else sorted(
      os.path.join(path, f)
      for f in os.listdir(path)
      if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp"))
    )
  )
  if not paths:
    raise FileNotFoundError(f"no image files in {path!r}")
  out = []
  for p in paths:
    with open(p, "rb") as f:
      out.append(load_image(f.read(), size, channels))
  return np.stack(out)


def _unit(images: np.ndarray) -> np.ndarray:
  """uint8 or [0, 1] floats -> float32 in [0, 1]."""
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 255.0
  return np.clip(images.astype(np.float32), 0.0, 1.0)


def load_inputs(path: str, n: int, shape, dataset, centered: bool) -> np.ndarray:
  """n input images [n, H, W, C] in the model's range (cycled if fewer are given)."""
  h, _, c = shape
  if not path:
    images = np.concatenate(list(dataset.epoch(n)))[:n]
    images = postprocess_images(images, centered)
  elif path.endswith(".npz"):
    with np.load(path) as f:
      if "images" not in f:
        raise ValueError(f"{path}: expected an array 'images' [N, H, W, C], found {list(f.keys())}")
      images = _unit(f["images"])
  else:
    images = _unit(_load_image_files(path, h, c))
  if images.ndim == 3:
    images = images[..., None]
  if images.shape[1:3] != tuple(shape[:2]):
    raise ValueError(f"inputs {path!r} have images {images.shape[1:]} but the model takes {shape}")
  images = np.resize(images, (n,) + images.shape[1:])
  return (2.0 * images - 1.0 if centered else images).astype(np.float32)


def load_mask(spec: str, n: int, shape) -> np.ndarray:
  """The mask broadcast to [n, H, W, C], 1 = known."""
  if spec.endswith(".npz"):
    with np.load(spec) as f:
      if "mask" not in f:
        raise ValueError(f"{spec}: expected an array 'mask', found {list(f.keys())}")
      m = np.asarray(f["mask"], np.float32)
  elif os.path.exists(spec):
    m = _unit(_load_image_files(spec, shape[0], 1))[0]
  else:
    m = builtin_mask(spec, shape)
  if m.ndim == 2:
    m = m[..., None]
  m = (m > 0.5).astype(np.float32)
  target = (n,) + tuple(shape)
  try:
    return np.broadcast_to(m if m.ndim == 4 else m[None], target).copy()
  except ValueError:
    raise ValueError(f"mask {spec!r} of shape {m.shape} does not fit samples {target}") from None


def guided_score_fn(
  cond: str,
  score_apply,
  params,
  y: jax.Array,
  sde,
  *,
  guidance_scale: float,
  cfg_form: str = "eps",
  num_classes: int = 0,
  logits_fn=None,
):
  """score_fn(x, t) of condition 'class' or 'cfg' for labels y: [B], from the run's own
  `score_apply(params, x, t, labels=None)` (`runner_utils.Bundle.score_apply`: the network, its
  target and its preconditioning made a score the way unconditional sampling makes it).

    class  score(x, t) + guidance_scale grad_x log p_t(y | x), logits_fn(x, t) the classifier's;
    cfg    score_u + w (score_c - score_u), w = guidance_scale, with score_c fed the labels y and
           score_u the "no label" class num_classes; in eps form (cfg_form 'eps') the same
           combination of eps = -s(t) score, which is equal to it (eps is linear in the score).
  """
  if cond == "class":
    return ctl.classifier_guided_score(
      lambda x, t: score_apply(params, x, t), logits_fn, y, guidance_scale
    )
  if cond != "cfg":
    raise ValueError(f"guided_score_fn: condition {cond!r} is not 'class' or 'cfg'")
  if num_classes <= 0:
    raise ValueError(
      "sampling.condition=cfg needs a label-conditional network: "
      "train with model.num_classes > 0 (and training.label_dropout > 0)"
    )
  cond_fn, uncond_fn = ctl.label_score_fns(
    lambda x, t, lab: score_apply(params, x, t, lab), y, num_classes
  )
  if cfg_form == "score":
    return ctl.classifier_free_score(cond_fn, uncond_fn, guidance_scale)
  if cfg_form != "eps":
    raise ValueError(f"sampling.cfg_form={cfg_form!r}: choose from ['eps', 'score']")

  def to_eps(f):
    return lambda x, t: -bcast(sde.alpha_sigma(t)[1], x) * f(x, t)

  return ctl.classifier_free_eps(to_eps(cond_fn), to_eps(uncond_fn), guidance_scale, sde)


def _grid_rows(rows, ncols):
  """Rows of images (each [k, H, W, C] in [0, 1], k <= ncols) -> one padded image list."""
  out = []
  for r in rows:
    pad = ncols - len(r)
    out.append(np.concatenate([r, np.ones((pad,) + r.shape[1:], np.float32)]) if pad else r)
  return np.concatenate(out)


def run(config, workdir: str, *, bundle=None, mesh=None):
  """Draws sampling.num_samples conditional samples in batches of sampling.batch_size; writes
  controllable_<step>_<condition>.npz and .png; returns (samples in the model's range, step).
  `bundle`, `mesh`: as for `sample_runner.run` (built here when not given)."""
  ru.apply_cpu_workaround()
  s = config.sampling
  cond = s.condition
  bundle = ru.build(config) if bundle is None else bundle
  params, step = ru.load_ema_params(config, workdir, bundle, config.eval.checkpoint, mesh)
  sde, shape = bundle.sde, bundle.shape
  if s.num_samples % s.batch_size:
    raise ValueError(
      f"sampling.num_samples={s.num_samples} must be a multiple of "
      f"sampling.batch_size={s.batch_size}"
    )
  build = sampler_from_config(s, sde)
  score_apply = bundle.score_apply  # preconditioning, target and labels as in --mode sample
  num_classes = int(config.model.get("num_classes", 0))
  dataset = get_dataset(ru.data_spec(config), "test")
  n, bsz = s.num_samples, s.batch_size
  batch_shape = (bsz,) + tuple(shape)
  key = jax.random.fold_in(jax.random.key(config.seed), step)
  extra = {}

  if cond in ("class", "cfg"):
    logits_fn = None
    if cond == "class":
      from score_sde.train_classifier import load_classifier_logits_fn, num_classes as clf_k

      logits_fn, clf_step = load_classifier_logits_fn(config, workdir)
      k = clf_k(config)
      print(f"classifier from step {clf_step}", flush=True)
    else:
      k = num_classes

    def score_of(p, y):
      return guided_score_fn(
        cond,
        score_apply,
        p,
        y,
        sde,
        guidance_scale=s.guidance_scale,
        cfg_form=s.cfg_form,
        num_classes=num_classes,
        logits_fn=logits_fn,
      )

    classes = parse_classes(s.classes, k)
    labels = np.asarray([classes[i % len(classes)] for i in range(n)], np.int32)
    sample = jax.jit(lambda p, y, key: run_loop(build(score_of(p, y), batch_shape), key))
    out = [
      sample(params, jnp.asarray(labels[b * bsz : (b + 1) * bsz]), jax.random.fold_in(key, b))
      for b in range(n // bsz)
    ]
    extra["labels"] = labels
  elif cond in ("inpaint", "colorize"):
    if not dataset.is_image:
      raise ValueError(f"sampling.condition={cond} needs image data; {config.data.name} is not")
    inputs = load_inputs(s.inputs, n, shape, dataset, config.data.centered)
    if cond == "inpaint":
      masks = load_mask(s.mask, n, shape)

      def sample_batch(p, data, mask, key):
        x, nfe = run_loop(
          build(
            lambda x, t: score_apply(p, x, t), batch_shape, ctl.inpaint_projector(sde, data, mask)
          ),
          key,
        )
        return ctl.impose(x, data, mask), nfe

      extra["masks"] = masks
    else:
      if shape[-1] != 3:
        raise ValueError(
          f"sampling.condition=colorize needs RGB data (num_channels=3); "
          f"{config.data.name} has {shape[-1]} channel(s)"
        )
      masks = np.zeros((n, 1), np.float32)  # unused: the grey level is the known part

      def sample_batch(p, data, mask, key):
        grey = ctl.grey_level(data)
        x, nfe = run_loop(
          build(lambda x, t: score_apply(p, x, t), batch_shape, ctl.colorize_projector(sde, grey)),
          key,
        )
        known, m = ctl.grey_known(grey)
        x = ctl.couple_colors(ctl.impose(ctl.decouple_colors(x), known, m))
        # Into the data range by desaturation, not clipping: the grey level stays the input's.
        return ctl.desaturate_into_range(x, -1.0 if config.data.centered else 0.0, 1.0), nfe

    sample = jax.jit(sample_batch)
    out = [
      sample(
        params,
        jnp.asarray(inputs[b * bsz : (b + 1) * bsz]),
        jnp.asarray(masks[b * bsz : (b + 1) * bsz]),
        jax.random.fold_in(key, b),
      )
      for b in range(n // bsz)
    ]
    extra["inputs"] = inputs
  else:
    raise ValueError(
      f"sampling.condition={cond!r}: choose from ['class', 'cfg', 'colorize', 'inpaint', 'none']"
    )
  samples = np.concatenate([np.asarray(x) for x, _ in out]).astype(np.float32)
  nfe = int(np.mean([int(v) for _, v in out]))
  if jax.process_index() == 0:
    stem = os.path.join(workdir, f"controllable_{step}_{cond}")
    np.savez(stem + ".npz", samples=samples, nfe=nfe, sampling=s.to_json(), **extra)
    if dataset.is_image:
      shown = postprocess_images(samples, config.data.centered)
      _write_grid(stem + ".png", cond, shown, extra, config.data.centered)
    else:
      _write_scatter(stem + ".png", samples, extra["labels"], next(dataset.batches(2000, 0, 1)))
    print(f"{cond}: {n} samples at step {step}, NFE {nfe}; wrote {stem}.npz and .png", flush=True)
  return samples, step


def _write_scatter(path, samples, labels, reference):
  """2-D samples coloured by their requested class, over grey data."""
  from score_sde.plotting import _pyplot

  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
  ax.scatter(reference[:, 0], reference[:, 1], s=2, c="0.8")
  for c in sorted(set(labels.tolist())):
    ax.scatter(samples[labels == c, 0], samples[labels == c, 1], s=3, label=f"class {c}")
  ax.set_aspect("equal")
  ax.legend(loc="upper right", markerscale=3)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def _write_grid(path, cond, shown, extra, centered):
  from score_sde.plotting import save_image_grid

  if cond in ("class", "cfg"):
    labels = extra["labels"]
    classes = sorted(set(labels.tolist()))
    ncols = max(int(np.sum(labels == c)) for c in classes)
    rows = [shown[labels == c] for c in classes]  # one row per class
    save_image_grid(path, _grid_rows(rows, ncols), ncols=ncols)
    return
  inputs = postprocess_images(extra["inputs"], centered)
  ncols = min(len(shown), 16)
  if cond == "inpaint":
    masked = inputs * extra["masks"] + 0.5 * (1.0 - extra["masks"])  # unknown pixels grey
    rows = [inputs[:ncols], masked[:ncols], shown[:ncols]]
  else:
    grey = np.repeat(np.mean(inputs[:ncols], -1, keepdims=True), 3, -1)
    rows = [inputs[:ncols], grey, shown[:ncols]]
  save_image_grid(path, _grid_rows(rows, ncols), ncols=ncols)
