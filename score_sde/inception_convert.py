"""Converts pytorch-fid's Inception weights (.pth) to the .npz that `score_sde.inception` reads.

    python -m score_sde.inception_convert pt_inception-2015-12-05-6726825d.pth inception_fid.npz

Needs PyTorch (only here: `pip install torch`, CPU build is enough). The .pth is the state dict of
pytorch-fid's FID Inception, released at
https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/
pt_inception-2015-12-05-6726825d.pth
with SHA-256 6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2.
The checksum is verified; the tensors are written unchanged (PyTorch names and layouts), and the
result is checked by building the Flax variables from it.
"""

import hashlib
import sys

import numpy as np


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def convert(pth_path: str, npz_path: str, check_sha256: bool = True) -> None:
  from score_sde import inception

  digest = sha256(pth_path)
  if check_sha256 and digest != inception.WEIGHTS_SHA256:
    raise ValueError(
      f"{pth_path} has SHA-256 {digest}, not that of {inception.WEIGHTS_FILE} "
      f"({inception.WEIGHTS_SHA256}); pass --no-check to convert it anyway"
    )
  try:
    import torch
  except ImportError as e:
    raise ImportError("reading a .pth needs PyTorch: pip install torch") from e
  state = torch.load(pth_path, map_location="cpu")
  arrays = {k: v.detach().cpu().numpy() for k, v in state.items()}
  inception.variables_from_state_dict(arrays)  # every tensor used once, shapes as expected
  np.savez(npz_path, **arrays)
  print(f"wrote {len(arrays)} tensors to {npz_path}")


def main(argv):
  args = [a for a in argv[1:] if a != "--no-check"]
  if len(args) != 2:
    print(__doc__, file=sys.stderr)
    sys.exit(2)
  convert(args[0], args[1], check_sha256="--no-check" not in argv)


if __name__ == "__main__":
  main(sys.argv)
