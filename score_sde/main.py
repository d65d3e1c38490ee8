"""Command line entry point.

    python -m score_sde.main --config configs/toy/vp_eight_gaussians.py --workdir runs/toy --mode train
    score-sde --config configs/digits/vp_small_unet.py --workdir runs/digits --config.training.n_iters=500
    score-sde --config configs/toy/vp_eight_gaussians.py --print_config   # every config field

Modes: train (then, unless training.sample_at_end=False, sample and report quality: the digits
metric on digits, sliced W2 / exact NLL / off-mode fraction on toys), sample (write samples .npz +
PNG from the latest checkpoint; with sampling.condition = class, cfg, inpaint or colorize,
conditional samples beside their inputs: score_sde/controllable_runner.py), eval
(score_sde/eval_runner.py: for checkpoints eval.begin_ckpt to eval.end_ckpt, the test-split
loss, eval.num_samples samples in resumable rounds and their quality, and with --config.eval.enable_bpd bits/dim; metrics JSON per checkpoint under
workdir/eval/), train_classifier (the noise-conditional classifier for sampling.condition=class,
in <workdir>/classifier).

Any config field can be set with --config.<section>.<field>=VALUE (--print_config lists them with
their values; score_sde/config_defaults.py says what each means). --config.sampling.num_steps=0
means the sampler's own default. The whole config, the data files and the workdir are checked
before any compute (score_sde/validate.py): a bad input is answered in one line and exit code 2
(--verbose adds the traceback).
"""

import difflib
import os
import sys
import traceback

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
  "config",
  None,
  "Experiment config file (e.g. configs/toy/vp_eight_gaussians.py). Override "
  "any field with --config.<section>.<field>=VALUE; --print_config lists every field.",
  lock_config=True,
)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and samples.")
flags.DEFINE_enum(
  "mode",
  "train",
  ["train", "sample", "eval", "train_classifier"],
  "What to run (train_classifier: the noise-conditional classifier of "
  "sampling.condition=class, in <workdir>/classifier).",
)
flags.DEFINE_bool(
  "print_config",
  False,
  "Print the config (defaults, the file's changes and any "
  "--config.* overrides), one field a line, and exit.",
)
flags.DEFINE_bool("verbose", False, "Show orbax / absl INFO logs; on errors, the full traceback.")
flags.mark_flags_as_required(["config"])


def _sample_and_report(config, workdir, bundle=None, mesh=None):
  """Samples, then one quality line: the digits metric on digits, the toy metrics on toys."""
  from score_sde import sample_runner
  from score_sde.evaluate import quality_line, sample_quality

  samples, step = sample_runner.run(config, workdir, bundle=bundle, mesh=mesh)
  q = sample_quality(config, workdir, samples, step)
  print(f"sample quality at step {step} (n = {q['num_samples']}): {quality_line(q)}", flush=True)
  for note in q["notes"]:
    print(f"note: {note}", flush=True)
  return q


def _quiet_logs(verbose: bool) -> None:
  """orbax and absl log every checkpoint step at INFO; keep those off unless --verbose."""
  import logging

  from absl import logging as absl_logging

  level = logging.INFO if verbose else logging.WARNING
  absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)
  for name in ("absl", "orbax", "jax"):
    logging.getLogger(name).setLevel(level)


def _setup_devices(config):
  """jax.distributed (when config.distributed) and the one data mesh over all processes' devices.

  On a cluster jax finds the coordinator itself; elsewhere set JAX_COORDINATOR_ADDRESS,
  JAX_NUM_PROCESSES and JAX_PROCESS_ID (e.g. several processes on one machine).
  """
  import os

  import jax

  from score_sde.train_step import data_mesh

  if config.distributed:
    kwargs = {}
    if "JAX_NUM_PROCESSES" in os.environ:
      kwargs = dict(
        num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
        process_id=int(os.environ["JAX_PROCESS_ID"]),
      )
    jax.distributed.initialize(**kwargs)
  return data_mesh()


def main(argv):
  del argv
  config, workdir = FLAGS.config, FLAGS.workdir
  _quiet_logs(FLAGS.verbose)
  from score_sde import runner_utils as ru

  ru.apply_cpu_workaround()  # before jax starts its backend
  mesh = _setup_devices(config)
  bundle = ru.build(config)  # validates the config once, for every mode
  if FLAGS.mode == "train":
    from score_sde.train import train

    result = train(config, workdir, bundle=bundle, mesh=mesh)
    if result["preempted"]:
      return  # a half-trained model: no sampling; the rerun resumes and samples at the end
    if config.training.sample_at_end:
      _sample_and_report(config, workdir, bundle, mesh)
  elif FLAGS.mode == "sample" and config.sampling.condition != "none":
    from score_sde import controllable_runner

    controllable_runner.run(config, workdir, bundle=bundle, mesh=mesh)
  elif FLAGS.mode == "sample":
    from score_sde import sample_runner

    sample_runner.run(config, workdir, bundle=bundle, mesh=mesh)
  elif FLAGS.mode == "train_classifier":
    from score_sde.train_classifier import train as train_classifier

    train_classifier(config, workdir, mesh=mesh)
  else:
    from score_sde import eval_runner

    eval_runner.run(config, workdir, bundle=bundle, mesh=mesh)


# Errors that mean a bad input (config, files, workdir): one line, exit code 2.
INPUT_ERRORS = (ValueError, TypeError, KeyError, OSError, ImportError)


def _config_path(argv):
  """The --config file path in argv (without a `:args` suffix), or None."""
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1].split(":", 1)[0]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1].split(":", 1)[0]
  return None


def _base_config(argv):
  """The config the overrides apply to: --config's file (with its `:args`) when it loads, else
  the defaults. Config files add fields of their own (a model's hyperparameters), so checking an
  override against the defaults alone would blame a field that exists."""
  import importlib.util

  from score_sde.config_defaults import get_default_config

  path = _config_path(argv)
  arg = next((a for a in argv if a.startswith("--config=")), None)
  if arg is None and "--config" in argv[:-1]:
    arg = argv[argv.index("--config") + 1]
  suffix = arg.split("=", 1)[-1].split(":", 1)[1:] if arg else []
  try:
    spec = importlib.util.spec_from_file_location("_score_sde_config_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(*suffix)
  except Exception:  # noqa: BLE001  (no loadable file: the defaults are the best guess)
    return get_default_config()


def _unknown_override(argv):
  """The first --config.<a>.<b> override naming no field of the config: a one-line message."""
  default = _base_config(argv)
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    path = arg[len("--config.") :].split("=", 1)[0].split(".")
    node, prefix = default, "config"
    for key in path:
      if node is None or not hasattr(node, "keys") or key not in node:
        if prefix == "config.model":
          return f"{arg}: the config's model has no field {key!r} (see --print_config)"
        close = difflib.get_close_matches(key, list(node.keys()) if hasattr(node, "keys") else [])
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{arg}: {prefix} has no field {key!r}; {hint}(see --print_config)"
      node, prefix = node[key], f"{prefix}.{key}"
  return None


def _parse_flags(argv):
  """absl's flag parsing, with config-loading errors turned into one line and exit code 2."""
  path = _config_path(argv)
  if path is not None and not os.path.isfile(path):
    raise _InputError(f"config file {path!r} does not exist")
  try:
    return FLAGS(argv)
  except flags.Error as e:
    raise _InputError(str(e)) from e
  except SyntaxError as e:
    raise _InputError(f"config file {e.filename} line {e.lineno}: {e.msg}") from e
  except Exception as e:  # noqa: BLE001  (anything raised while loading or overriding the config)
    frames = traceback.extract_tb(e.__traceback__)
    if path and any(os.path.abspath(f.filename) == os.path.abspath(path) for f in frames):
      raise _InputError(f"config file {path}: get_config() raised {type(e).__name__}: {e}") from e
    unknown = _unknown_override(argv)
    raise _InputError(unknown or f"{type(e).__name__} while reading the config: {e}") from e


class _InputError(Exception):
  """A bad command line: reported in one line, exit code 2."""


def _checked_main(argv):
  """--print_config, then the whole config, data and workdir checked before main() computes."""
  from score_sde.validate import validate, validate_workdir

  config = FLAGS.config
  if FLAGS.print_config:
    print(
      "# every field can be set with --config.<section>.<field>=VALUE; meanings: "
      "score_sde/config_defaults.py; sampling.num_steps=0: the sampler's default"
    )
    print(config)
    return
  if not FLAGS.workdir:
    raise _InputError("--workdir is required (a directory for checkpoints, logs and samples)")
  validate(config, FLAGS.mode)
  validate_workdir(config, FLAGS.workdir, FLAGS.mode)
  main(argv)


def _one_line(e: BaseException) -> str:
  message = " ".join(str(e).split())  # multi-line messages (orbax, PIL) on one line
  from score_sde.validate import ConfigError

  if isinstance(e, (_InputError, ConfigError)):
    return f"error: {message}"
  return f"error: {type(e).__name__}: {message}"


def cli(argv=None):
  """Console script `score-sde`. A bad input (config, data, workdir) prints one line naming it
  and exits with code 2; a non-finite training run exits with 1; --verbose adds the traceback."""
  argv = sys.argv if argv is None else argv
  verbose = "--verbose" in argv or "--verbose=true" in [a.lower() for a in argv]
  try:
    app.run(_checked_main, argv=argv, flags_parser=_parse_flags)
  except (SystemExit, KeyboardInterrupt):
    raise
  except Exception as e:  # noqa: BLE001
    if verbose:
      traceback.print_exc()
    print(_one_line(e), file=sys.stderr, flush=True)
    if isinstance(e, FloatingPointError):
      sys.exit(1)
    if isinstance(e, (_InputError,) + INPUT_ERRORS):
      sys.exit(2)
    if not verbose:
      print("(an unexpected error: run again with --verbose for the traceback)", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  cli()
