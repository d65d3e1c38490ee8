"""Command line entry point.

    python -m score_sde.main --config configs/toy/vp_eight_gaussians.py --workdir runs/toy --mode train
    score-sde --config configs/digits/vp_small_unet.py --workdir runs/digits --config.training.n_iters=500

Modes: train (then, unless training.sample_at_end=False, sample and report quality), sample
(write samples .npz + PNG from the latest checkpoint), eval (sampling quality and, with
--config.eval.enable_bpd, bits/dim).
"""
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
flags.DEFINE_enum("mode", "train", ["train", "sample", "eval"], "What to run.")
flags.mark_flags_as_required(["config", "workdir"])


def _sample_and_report(config, workdir):
  from score_sde import sample_runner
  from score_sde.evaluate import sample_quality
  samples, step = sample_runner.run(config, workdir)
  q = sample_quality(config, workdir, samples, step)
  print(f"sample quality at step {step}: sliced W2 = {q['sliced_w2']:.4f} "
        f"(floor between two real sample sets: {q['sliced_w2_floor']:.4f}; n = {q['num_samples']})",
        flush=True)
  return q


def main(argv):
  del argv
  config, workdir = FLAGS.config, FLAGS.workdir
  if FLAGS.mode == "train":
    from score_sde.train import train
    train(config, workdir)
    if config.training.sample_at_end:
      _sample_and_report(config, workdir)
  elif FLAGS.mode == "sample":
    from score_sde import sample_runner
    sample_runner.run(config, workdir)
  else:
    if config.eval.enable_sampling:
      _sample_and_report(config, workdir)
    if config.eval.enable_bpd:
      from score_sde import bpd_runner
      bpd_runner.run(config, workdir)


def cli():
  """Console script `score-sde`; errors in the config or inputs print one line and exit 1."""
  try:
    app.run(main)
  except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as e:
    print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  cli()
