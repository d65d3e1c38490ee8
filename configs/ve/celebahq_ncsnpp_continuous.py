"""NCSN++ (cont.) on CelebA-HQ 1024x1024: VE SDE (sigma_max 1348, N = 2000), nf 16, 8 levels, batch 8 (105.8M params).

python -m score_sde.main --config configs/ve/celebahq_ncsnpp_continuous.py --workdir runs/ve_celebahq_ncsnpp_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("celebahq_1024")
  pc.set_sde(config, "vesde", continuous=True, reduce_mean=False)
  config.training.ema_rate = 0.9999
  pc.set_network(config, "ffhq_1024_ncsnpp_continuous")
  return config
