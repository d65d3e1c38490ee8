"""Pictures: loss curves from metrics.jsonl, toy density plots, snapshot grids during training."""

import json
import os

import numpy as np
import pytest

from score_sde import plotting
from score_sde.config_defaults import get_default_config
from score_sde.data.toy import sample_toy
from score_sde.toy_metrics import toy_log_density


def _image_steps(logdir, tag):
  """Steps of the image summaries `tag` in the TensorBoard event files under `logdir` (TFRecord
  framing: u64 length, u32 crc, the Event proto, u32 crc)."""
  import struct

  from tensorboardX.proto import event_pb2

  steps = []
  for name in sorted(os.listdir(logdir)):
    with open(os.path.join(logdir, name), "rb") as f:
      data = f.read()
    i = 0
    while i < len(data):
      (n,) = struct.unpack("<Q", data[i : i + 8])
      event = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
      i += 16 + n
      steps += [event.step for v in event.summary.value if v.tag == tag and v.HasField("image")]
  return steps


def _png_shape(path):
  import matplotlib.image

  return matplotlib.image.imread(path).shape


def test_loss_curve_from_metrics_jsonl(tmp_path):
  # A metrics.jsonl as train.py writes it, with a null (non-finite) value and a line cut short
  # by a kill: both are left out of the curve.
  steps = np.arange(100, 1100, 100)
  lines = [json.dumps({"step": int(s), "loss": float(10.0 / s), "grad_norm": 1.0}) for s in steps]
  lines.insert(3, json.dumps({"step": 350, "loss": None}))
  path = tmp_path / "metrics.jsonl"
  path.write_text("\n".join(lines) + '\n{"step": 1100, "lo')
  records = plotting.read_metrics(str(tmp_path))
  assert [r["step"] for r in records] == steps.tolist()[:3] + [350] + steps.tolist()[3:]
  out = tmp_path / "loss.png"
  plotting.main(["loss", str(tmp_path), "--out", str(out)])
  h, w, _ = _png_shape(out)
  assert (h, w) == (int(4.2 * 120), int(6.4 * 120))


def test_histogram_density_matches_the_exact_toy_density(tmp_path):
  # 200k exact samples of the eight Gaussians: the histogram integrates to the mass inside the
  # window and is close to the exact density in L1 (the binning and sampling error only).
  x = sample_toy("eight_gaussians", np.random.default_rng(0), 200_000)
  extent, bins = (-2.0, 2.0, -2.0, 2.0), 60
  hist, centers = plotting.histogram_density(x, extent, bins)
  width = 4.0 / bins
  inside = np.mean(np.all(np.abs(x) < 2.0, axis=1))
  np.testing.assert_allclose(hist.sum() * width**2, inside, rtol=1e-12)
  # The exact mean density over each cell (a 7 x 7 midpoint rule inside it; cells are about one
  # mode std wide).
  offsets = (np.arange(7) + 0.5) / 7 * width - width / 2
  sub = np.stack(np.meshgrid(offsets, offsets, indexing="ij"), -1).reshape(-1, 2)
  pts = (centers.reshape(-1, 1, 2) + sub[None]).reshape(-1, 2)
  exact = np.exp(toy_log_density("eight_gaussians", pts)).reshape(-1, len(sub)).mean(1)
  exact = exact.reshape(hist.shape)
  l1 = np.abs(hist - exact).sum() * width**2
  assert l1 < 0.06, l1  # sampling noise about 0.03
  # Samples from another distribution are far in the same norm.
  wrong, _ = plotting.histogram_density(
    0.7 * np.random.default_rng(1).normal(size=(200_000, 2)), extent, bins
  )
  assert np.abs(wrong - exact).sum() * width**2 > 0.5
  out = tmp_path / "density.png"
  plotting.density_comparison(str(out), x[:5000], lambda p: toy_log_density("eight_gaussians", p))
  assert os.path.getsize(out) > 0


@pytest.mark.slow  # a training run; the grid and scatter writers are tested above
def test_snapshot_samples_written_at_checkpoint_steps(tmp_path):
  """training.snapshot_sampling: a PNG, the samples and a TensorBoard image at each checkpoint
  step, drawn with the EMA parameters saved at that step."""
  import jax

  from score_sde import runner_utils as ru
  from score_sde.sample_runner import compile_loop, draw
  from score_sde.sampling import sampler_from_config
  from score_sde.train import train

  c = get_default_config()
  c.data.name = "two_moons"
  c.model.update(name="mlp", hidden=32, num_layers=1, embedding_dim=16)
  c.training.update(
    batch_size=32,
    n_iters=10,
    n_jitted_steps=5,
    log_freq=5,
    snapshot_freq=5,
    sample_at_end=False,
    snapshot_sampling=True,
    snapshot_num_samples=16,
  )
  c.sampling.num_steps = 10
  train(c, str(tmp_path))
  snaps = tmp_path / "snapshots"
  assert sorted(os.listdir(snaps)) == [
    "samples_10.npz",
    "samples_10.png",
    "samples_5.npz",
    "samples_5.png",
  ]
  assert _image_steps(tmp_path / "tb", "samples") == [5, 10]
  # The step-10 snapshot is the configured sampler run on the checkpoint's EMA parameters.
  bundle = ru.build(c)
  params, step = ru.load_ema_params(c, str(tmp_path), bundle)
  assert step == 10
  build = sampler_from_config(c.sampling, bundle.sde)
  x, _ = draw(
    build,
    None,
    (16, 2),
    jax.random.fold_in(jax.random.key(c.seed + 2), 10),
    1,
    progress=False,
    compiled=compile_loop(build, bundle.score_apply, (16, 2), params=params),
  )
  np.testing.assert_allclose(
    np.load(snaps / "samples_10.npz")["samples"], np.asarray(x), rtol=1e-5, atol=1e-5
  )
