"""NCSN++ (cont.) on FFHQ 256x256: VE SDE with N = 2000, output/input skip pyramids (65.6M params).

python -m score_sde.main --config configs/ve/ffhq_256_ncsnpp_continuous.py --workdir runs/ve_ffhq_256_ncsnpp_continuous
"""

from score_sde import paper_configs as pc


def get_config():
  config = pc.dataset_config("ffhq_256")
  pc.set_sde(config, "vesde", continuous=True)
  pc.set_network(config, "celebahq_256_ncsnpp_continuous")
  return config
