"""Shared defaults. Every field the code reads exists here; experiment configs change only what differs.

A config file's `get_config()` starts from `score_sde.config_defaults.get_default_config()`. Any field can be overridden from
the command line, e.g. `--config.training.batch_size=64`.
"""

import ml_collections
from ml_collections.config_dict import placeholder


def get_default_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 42

  config.data = data = ml_collections.ConfigDict()
  data.name = "eight_gaussians"  # see score_sde.data.DATASETS
  data.image_size = 8  # images: square side after resizing
  data.num_channels = 1
  data.centered = False  # images: scale to [-1, 1] instead of [0, 1]
  data.uniform_dequantization = False
  data.random_flip = False
  data.data_dir = ""  # TFDS data_dir, or a path for celebahq / ffhq / image folders

  config.sde = sde = ml_collections.ConfigDict()
  sde.name = "vpsde"  # see score_sde.sde.SDES
  sde.beta_min = 0.1
  sde.beta_max = 20.0
  sde.sigma_min = 0.01
  sde.sigma_max = 50.0
  sde.num_scales = 1000  # N, the number of discretisation steps

  config.model = model = ml_collections.ConfigDict()
  model.name = "mlp"  # see score_sde.models.MODELS; other fields are its hyperparameters
  model.target = "auto"  # what the network predicts: auto | score | eps | x0 | v
  # none | edm | vp | ve: wrap the network as D = c_skip x + c_out F(c_in x; c_noise) (EDM
  # Table 1, score_sde.models.precond); the model is then a denoiser and target stays 'auto'.
  model.preconditioning = "none"
  model.sigma_data = 0.5  # edm preconditioning: the data's standard deviation
  # Optional hyperparameter of every image network: model.num_classes > 0 makes it
  # label-conditional (classifier-free guidance); absent (the default) or 0: unconditional.

  config.training = training = ml_collections.ConfigDict()
  training.batch_size = 256
  training.n_iters = 2000
  training.n_jitted_steps = 10  # train steps per device call (lax.scan)
  training.log_freq = 100
  training.snapshot_freq = 500  # checkpoint every this many steps
  training.keep_checkpoints = 3
  training.loss = "dsm"  # dsm (continuous) | smld | ddpm (discrete, paper's appendix)
  #                                   | edm (Karras et al. 2022; needs model.preconditioning)
  training.p_mean = -1.2  # edm loss: ln sigma ~ N(p_mean, p_std^2)
  training.p_std = 1.2
  training.reduce_mean = False  # mean (True) or sum (False) over data dimensions
  training.likelihood_weighting = False
  training.importance_sampling = False  # draw t with density ~ the weighting (variance reduction)
  training.eps = 1e-5  # time cut-off: t ~ U(eps, T)
  training.ema_rate = 0.999
  training.ema_warmup = True  # decay min(ema_rate, (1 + step) / (10 + step)); False: 2021 release
  training.compute_dtype = "float32"  # float32 | bfloat16 (parameters and optimizer stay float32)
  training.micro_batch_size = placeholder(int)  # per-step gradient accumulation when set
  training.sample_at_end = True  # write samples and a quality number when training ends
  training.snapshot_sampling = False  # at each checkpoint: sample with the EMA params, write a PNG
  training.snapshot_num_samples = 64  # (workdir/snapshots/, TensorBoard); config.sampling's sampler
  training.label_dropout = 0.1  # label-conditional models: P(label -> "no label") per example

  config.optim = optim = ml_collections.ConfigDict()
  optim.optimizer = "adam"  # adam | adamw
  optim.lr = 2e-4
  optim.beta1 = 0.9
  optim.beta2 = 0.999
  optim.eps = 1e-8
  optim.weight_decay = 0.0
  optim.warmup = 100
  optim.decay_steps = 0  # > 0: lr decays linearly to 0 over the last decay_steps of n_iters
  optim.grad_clip = 1.0  # global-norm clipping; <= 0 disables

  config.sampling = sampling = ml_collections.ConfigDict()
  sampling.method = "pc"  # pc | ode | edm_heun | ddim | dpm_solver | dpm_solver_pp |
  # dpm_solver_pp_sde | unipc | lms (score_sde.sampling.dispatch)
  sampling.predictor = "euler_maruyama"
  sampling.corrector = "none"
  sampling.snr = 0.16
  sampling.n_steps_each = 1
  sampling.noise_removal = True
  sampling.ancestral_variance = placeholder(str)  # ancestral_sampling: beta | beta_tilde (default:
  # the chain's, beta for DDPM, beta_tilde for SMLD)
  sampling.probability_flow = False
  sampling.num_steps = placeholder(int)  # time steps; default per sampler (pc: sde.num_scales)
  sampling.schedule = placeholder(str)  # time grid: uniform | log_snr | karras, or a .json file of
  # optimize_schedule (score_sde.sampling.schedules);
  # default per sampler
  sampling.eps = 1e-3  # sampling stops at t = eps
  sampling.num_samples = 1024
  sampling.batch_size = 1024
  sampling.ode_method = "tsit5"
  sampling.rtol = 1e-5
  sampling.atol = 1e-5
  sampling.per_sample = True  # ode: error norm = largest per-sample RMS (False: batch RMS)
  sampling.pcoeff = 0.0  # ode: PID controller coefficients (diffrax's; I-control)
  sampling.icoeff = 1.0
  sampling.ode_segments = 10  # ode, adaptive: the solve restarts at 10 log-SNR segments so
  # the progress bar moves (1: one uninterrupted solve)
  sampling.rho = 7.0  # edm_heun: Karras sigma schedule exponent
  sampling.s_churn = 0.0  # edm_heun: stochasticity (0 = deterministic)
  sampling.s_min = 0.0
  sampling.s_max = float("inf")
  sampling.s_noise = 1.0
  sampling.to_zero = False  # edm_heun: EDM's grid and final Euler step to sigma = 0
  sampling.eta = 0.0  # ddim: 0 deterministic, 1 = ancestral-like
  sampling.order = placeholder(int)  # exponential integrators: solver order (default per sampler)
  sampling.multistep = True  # dpm_solver(_pp): multistep (1 NFE a step) or singlestep
  sampling.lower_order_final = (
    True  # multistep: order <= steps left at the end (stabler, few steps)
  )
  sampling.solver_weights = "exact"  # exact | published (DPM-Solver-2 / ++(2M) as published)
  sampling.progress_chunks = 10  # the on-device loop runs in this many chunks (progress bar)
  # Controllable generation (score_sde/controllable.py, paper section 5):
  sampling.condition = (
    "none"  # none | class (noise-conditional classifier) | cfg | inpaint | colorize
  )
  sampling.guidance_scale = 1.0  # class: classifier scale; cfg: w (0 unconditional, 1 conditional)
  sampling.cfg_form = "eps"  # cfg: combine eps (Ho & Salimans) or scores (same samples)
  sampling.classes = placeholder(str)  # class / cfg: comma-separated classes; default all, in turn
  sampling.classifier_workdir = ""  # class: the classifier's workdir; default <workdir>/classifier
  sampling.inputs = ""  # inpaint / colorize: .npz (key 'images') or an image file/folder
  sampling.mask = (
    "left_half"  # inpaint: .npz ('mask'), image file, or left_half | center | random_pixels
  )

  # Noise-conditional classifier (python -m score_sde.train_classifier, or --mode train_classifier):
  config.classifier = classifier = ml_collections.ConfigDict()
  classifier.model = ml_collections.ConfigDict()
  classifier.model.name = (
    "wideresnet"  # see score_sde.models.classifiers; other fields: hyperparameters
  )
  classifier.batch_size = 128
  classifier.n_iters = 2000
  classifier.n_jitted_steps = 10
  classifier.log_freq = 100
  classifier.snapshot_freq = 500
  classifier.keep_checkpoints = 3
  classifier.lr = 2e-4
  classifier.warmup = 100
  classifier.grad_clip = 1.0
  classifier.ema_rate = 0.999
  classifier.eps = 1e-5  # time cut-off: t ~ U(eps, T), x_t noised by config.sde

  config.eval = evaluate = ml_collections.ConfigDict()
  evaluate.checkpoint = placeholder(int)  # step to evaluate; default: latest
  # --mode eval: checkpoints with begin_ckpt <= step <= end_ckpt (either may be unset: no bound);
  # both unset: eval.checkpoint, else the latest.
  evaluate.begin_ckpt = placeholder(int)
  evaluate.end_ckpt = placeholder(int)
  evaluate.enable_loss = True  # --mode eval: the loss (EMA parameters) on the test split
  evaluate.enable_sampling = True
  evaluate.num_samples = 1024  # --mode eval: drawn in rounds of eval.batch_size, each saved
  evaluate.fid_stats = ""  # images: Inception statistics .npz (python -m score_sde.fid_stats)
  evaluate.inception_weights = ""  # images: Inception .npz (score_sde/inception.py says how)
  evaluate.enable_bpd = False
  evaluate.bpd_dataset = "test"  # train | test
  evaluate.batch_size = 256  # eval loss, sampling rounds and bits/dim batches
  evaluate.rtol = 1e-5
  evaluate.atol = 1e-5
  evaluate.ode_method = "tsit5"
  evaluate.divergence = "hutchinson_rademacher"
  evaluate.num_dequant = 1  # dequantization draws averaged per data point

  config.distributed = placeholder(bool)  # True: call jax.distributed.initialize() (multi-host)
  return config
