"""Where every parameter of our networks sits in the 2021 release's checkpoints.

The release exists twice: the JAX/Flax code (yang-song/score_sde, flax msgpack checkpoints) and
its PyTorch port (yang-song/score_sde_pytorch, `.pth` state dicts). Our networks in
`score_sde.models` are a rewrite with the same parameters, named by our own modules. This module
describes, for one network configuration, the release's modules in the order the release builds
them, and for every parameter tensor (a `Leaf`):
  - its path in our parameter tree               e.g. ('ResnetBlock_3', 'Conv_0', 'kernel');
  - its name in the PyTorch port's state dict    e.g. 'all_modules.7.Conv_0.weight';
  - its path in the JAX release's parameter tree e.g. 'ResnetBlockBigGANpp_3/Conv_0/kernel';
  - its shape in our tree and how the PyTorch layout differs ('conv': PyTorch OIHW vs our HWIO;
    'dense': PyTorch's [out, in] vs our [in, out]; 'same': identical).

PyTorch port conventions: the U-Nets (NCSN++, DDPM++, DDPM) keep their modules in one
`nn.ModuleList` named `all_modules`, indexed in construction order; modules without parameters
(FIR resamplers without a convolution) still take an index. A state dict lists a module's own
parameters, then its submodules', in the order they were assigned in `__init__` (which is not
always the order of the forward pass: the DDPM residual block assigns both GroupNorms first). The
EMA's `shadow_params` are the trainable parameters in that same order; the Gaussian Fourier
projection's `W` (requires_grad=False) is not among them.

JAX release conventions: flax names a submodule `<ClassName>_<k>`, counting per class in call
order; layers created by helper functions (conv3x3, nn.GroupNorm) are named in the caller.
Our networks are called in the same order, so the JAX names differ from ours only in the class
names (`ResnetBlockBigGANpp` / `ResnetBlockDDPMpp` / `ResnetBlockDDPM` for our `ResnetBlock`,
`AttnBlockpp` for our NCSN++ `AttnBlock`, `Conv2d` for our `FIRConv2d`).

NCSN and NCSNv2 (RefineNets): the PyTorch port names modules by attribute (`begin_conv`,
`res2.0.conv2.conv`, `refine1.adapt_convs.0.1_2_conv`, `normalizer`, ...) and assigns them in an
order of its own (the final `normalizer` and `end_conv` right after `begin_conv`; in a residual
block `normalize1` last; `refine31` after `refine3` in the 256 px network although it runs
first). In the JAX release our `NCSNConv_i/Conv_0` is a plain `Conv_i` (its conv helpers create
`nn.Conv` in the caller), our `RefineNet_0` level does not exist, NCSN's blocks are the `Cond*`
classes and a conditional norm keeps its table in an `Embed_0` submodule. The PyTorch names
here were read from the port's source; the JAX release's NCSN / NCSNv2 names follow its
layers.py and normalization.py and could not be checked against a released file.

The PyTorch port (like the NCSN / NCSNv2 code it copies) computes InstanceNorm++'s spread of
channel means with torch.var (unbiased, divisor C - 1); the JAX release and our networks use
the biased variance (divisor C). For C = 128 channels that changes the alpha term by 0.4%: an
imported NCSN / NCSNv2 PyTorch checkpoint runs as the JAX release would run it.
"""

import collections
import dataclasses
from typing import Dict, List, Mapping, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Leaf:
  ours: Tuple[str, ...]
  torch: str
  jax: str
  shape: Tuple[int, ...]  # in our layout
  # 'same' | 'conv' (OIHW <-> HWIO) | 'dense' ([out, in] <-> [in, out]) | 'vector' ([C]; the JAX
  # release may store it as [1, 1, 1, C])
  layout: str = "same"
  trainable: bool = True  # False: absent from the PyTorch port's EMA shadow_params

  @property
  def torch_shape(self) -> Tuple[int, ...]:
    if self.layout == "conv":
      kh, kw, cin, cout = self.shape
      return (cout, cin, kh, kw)
    if self.layout == "dense":
      return tuple(reversed(self.shape))
    return self.shape


class _Scope:
  """One module: our path, its PyTorch state-dict prefix and its JAX path."""

  def __init__(self, builder: "_Layout", ours: Tuple[str, ...], torch: str, jax: str):
    self.b, self.ours, self.torch, self.jax = builder, ours, torch, jax

  def _add(self, ours_name, torch_name, jax_name, shape, layout="same", trainable=True):
    self.b.leaves.append(
      Leaf(
        self.ours + (ours_name,),
        f"{self.torch}.{torch_name}",
        f"{self.jax}/{jax_name}",
        tuple(shape),
        layout,
        trainable,
      )
    )

  def sub(self, ours: str, torch: Optional[str] = None, jax: Optional[str] = None) -> "_Scope":
    return _Scope(
      self.b, self.ours + (ours,), f"{self.torch}.{torch or ours}", f"{self.jax}/{jax or ours}"
    )

  # Parameterised layers (PyTorch order within each: weight, then bias).
  def conv(self, name, cin, cout, k=3, torch_name=None, jax_name=None, bias=True):
    s = self.sub(name, torch_name, jax_name)
    s._add("kernel", "weight", "kernel", (k, k, cin, cout), "conv")
    if bias:
      s._add("bias", "bias", "bias", (cout,))

  def dense(self, name, cin, cout):
    s = self.sub(name)
    s._add("kernel", "weight", "kernel", (cin, cout), "dense")
    s._add("bias", "bias", "bias", (cout,))

  def group_norm(self, name, c):
    s = self.sub(name)
    s._add("scale", "weight", "scale", (c,))
    s._add("bias", "bias", "bias", (c,))

  def nin(self, name, cin, cout):
    s = self.sub(name)
    s._add("W", "W", "W", (cin, cout))
    s._add("b", "b", "b", (cout,))


class _Layout:
  """Builds the leaf list of one network: modules in the release's construction order."""

  def __init__(self, jax_class_names: Mapping[str, str]):
    self.leaves: List[Leaf] = []
    self.torch_index = 0
    self.counts = collections.Counter()
    self.jax_names = dict(jax_class_names)

  def module(self, cls: str) -> _Scope:
    """The next top-level module of our class `cls` (and the next `all_modules` index)."""
    k = self.counts[cls]
    self.counts[cls] += 1
    idx = self.torch_index
    self.torch_index += 1
    return _Scope(
      self, (f"{cls}_{k}",), f"all_modules.{idx}", f"{self.jax_names.get(cls, cls)}_{k}"
    )


# ----------------------------------------------------------------------------------------------
# NCSN++ / DDPM++ (ours: models/ncsnpp.py; release: models/ncsnpp.py, layerspp.py)


def _ncsnpp_resblock(
  lay: _Layout, resblock_type: str, temb_dim: int, cin: int, cout: int, resample: bool = False
):
  s = lay.module("ResnetBlock")
  s.group_norm("GroupNorm_0", cin)
  s.conv("Conv_0", cin, cout)
  s.dense("Dense_0", temb_dim, cout)
  s.group_norm("GroupNorm_1", cout)
  s.conv("Conv_1", cout, cout)
  if resblock_type == "biggan":
    if cin != cout or resample:
      s.conv("Conv_2", cin, cout, k=1)
  elif cin != cout:
    s.nin("NIN_0", cin, cout)


def _attn(lay: _Layout, c: int):
  s = lay.module("AttnBlock")
  s.group_norm("GroupNorm_0", c)
  for i in range(4):
    s.nin(f"NIN_{i}", c, c)


def _resample(lay: _Layout, cls: str, cin: int, cout: int, with_conv: bool, fir: bool):
  """layerspp.Upsample / Downsample: a 3x3 conv ('Conv_0'), a fused FIR conv ('Conv2d_0' in the
  release, our 'FIRConv2d_0'), or no parameters (the module still takes an index)."""
  s = lay.module(cls)
  if with_conv:
    if fir:
      s.conv("FIRConv2d_0", cin, cout, torch_name="Conv2d_0", jax_name="Conv2d_0")
    else:
      s.conv("Conv_0", cin, cout)


def ncsnpp_layout(hp: Mapping, image_size: int, channels: int) -> List[Leaf]:
  """The release's NCSNpp.__init__ order for hyperparameters `hp` (our NCSNpp fields)."""
  if not hp.get("conditional", True):
    raise ValueError(
      "conditional=False NCSN++ has no released checkpoint (the release's blocks "
      "keep their time-embedding layer even then); cannot import"
    )
  rb = hp["resblock_type"]
  lay = _Layout(
    {
      "ResnetBlock": "ResnetBlockBigGANpp" if rb == "biggan" else "ResnetBlockDDPMpp",
      "AttnBlock": "AttnBlockpp",
    }
  )
  nf, ch_mult, nrb = hp["nf"], tuple(hp["ch_mult"]), hp["num_res_blocks"]
  attn_res, fir = tuple(hp["attn_resolutions"]), hp["fir"]
  with_conv, prog, prog_in = hp["resamp_with_conv"], hp["progressive"], hp["progressive_input"]
  n_levels = len(ch_mult)
  temb_dim = 4 * nf

  if hp["embedding_type"] == "fourier":
    s = lay.module("GaussianFourierProjection")
    s._add("W", "W", "W", (nf,), trainable=False)
    embed_dim = 2 * nf
  else:
    embed_dim = nf
  for cin in (embed_dim, temb_dim):
    s = lay.module("Dense")
    s._add("kernel", "weight", "kernel", (cin, temb_dim), "dense")
    s._add("bias", "bias", "bias", (temb_dim,))

  def top_conv(cin, cout):
    s = lay.module("Conv")
    s._add("kernel", "weight", "kernel", (3, 3, cin, cout), "conv")
    s._add("bias", "bias", "bias", (cout,))

  def top_norm(c):
    s = lay.module("GroupNorm")
    s._add("scale", "weight", "scale", (c,))
    s._add("bias", "bias", "bias", (c,))

  top_conv(channels, nf)
  hs_c, in_ch, pyramid_in_ch, res = [nf], nf, channels, image_size
  for level in range(n_levels):
    for _ in range(nrb):
      out_ch = nf * ch_mult[level]
      _ncsnpp_resblock(lay, rb, temb_dim, in_ch, out_ch)
      in_ch = out_ch
      if res in attn_res:
        _attn(lay, in_ch)
      hs_c.append(in_ch)
    if level != n_levels - 1:
      if rb == "ddpm":
        _resample(lay, "Downsample", in_ch, in_ch, with_conv, fir)
      else:
        _ncsnpp_resblock(lay, rb, temb_dim, in_ch, in_ch, resample=True)
      res //= 2
      if prog_in == "input_skip":
        _resample(lay, "Downsample", pyramid_in_ch, pyramid_in_ch, False, fir)
        s = lay.module("Combine")
        s.conv("Conv_0", pyramid_in_ch, in_ch, k=1, torch_name="Conv")
        if hp["progressive_combine"] == "cat":
          in_ch *= 2
      elif prog_in == "residual":
        _resample(lay, "Downsample", pyramid_in_ch, in_ch, True, fir)
        pyramid_in_ch = in_ch
      hs_c.append(in_ch)

  in_ch = hs_c[-1]
  _ncsnpp_resblock(lay, rb, temb_dim, in_ch, in_ch)
  _attn(lay, in_ch)
  _ncsnpp_resblock(lay, rb, temb_dim, in_ch, in_ch)

  pyramid_ch = 0
  for level in reversed(range(n_levels)):
    for _ in range(nrb + 1):
      out_ch = nf * ch_mult[level]
      _ncsnpp_resblock(lay, rb, temb_dim, in_ch + hs_c.pop(), out_ch)
      in_ch = out_ch
    if res in attn_res:
      _attn(lay, in_ch)
    if prog != "none":
      if level == n_levels - 1:
        top_norm(in_ch)
        pyramid_ch = channels if prog == "output_skip" else in_ch
        top_conv(in_ch, pyramid_ch)
      elif prog == "output_skip":
        _resample(lay, "Upsample", pyramid_ch, pyramid_ch, False, fir)
        top_norm(in_ch)
        top_conv(in_ch, channels)
        pyramid_ch = channels
      else:
        _resample(lay, "Upsample", pyramid_ch, in_ch, True, fir)
        pyramid_ch = in_ch
    if level != 0:
      if rb == "ddpm":
        _resample(lay, "Upsample", in_ch, in_ch, with_conv, fir)
      else:
        _ncsnpp_resblock(lay, rb, temb_dim, in_ch, in_ch, resample=True)
      res *= 2
  assert not hs_c
  if prog != "output_skip":
    top_norm(in_ch)
    top_conv(in_ch, channels)
  return lay.leaves


# ----------------------------------------------------------------------------------------------
# DDPM (ours: models/ddpm.py; release: models/ddpm.py, layers.py)


def _ddpm_resblock(lay: _Layout, temb_dim: int, cin: int, cout: int):
  # The release's ResnetBlockDDPM assigns both GroupNorms, then both convs, then the Dense.
  s = lay.module("ResnetBlock")
  s.group_norm("GroupNorm_0", cin)
  s.group_norm("GroupNorm_1", cout)
  s.conv("Conv_0", cin, cout)
  s.conv("Conv_1", cout, cout)
  s.dense("Dense_0", temb_dim, cout)
  if cin != cout:
    s.nin("NIN_0", cin, cout)


def ddpm_layout(hp: Mapping, image_size: int, channels: int) -> List[Leaf]:
  """The release's DDPM.__init__ order for hyperparameters `hp` (our DDPM fields)."""
  if not hp.get("conditional", True):
    raise ValueError(
      "conditional=False DDPM has no released checkpoint (the release keeps the "
      "time-embedding layers even then); cannot import"
    )
  lay = _Layout({"ResnetBlock": "ResnetBlockDDPM"})
  nf, ch_mult, nrb = hp["nf"], tuple(hp["ch_mult"]), hp["num_res_blocks"]
  attn_res, with_conv = tuple(hp["attn_resolutions"]), hp["resamp_with_conv"]
  n_levels, temb_dim = len(ch_mult), 4 * nf
  for cin in (nf, temb_dim):
    s = lay.module("Dense")
    s._add("kernel", "weight", "kernel", (cin, temb_dim), "dense")
    s._add("bias", "bias", "bias", (temb_dim,))

  def top_conv(cin, cout):
    s = lay.module("Conv")
    s._add("kernel", "weight", "kernel", (3, 3, cin, cout), "conv")
    s._add("bias", "bias", "bias", (cout,))

  top_conv(channels, nf)
  hs_c, in_ch, res = [nf], nf, image_size
  for level in range(n_levels):
    for _ in range(nrb):
      out_ch = nf * ch_mult[level]
      _ddpm_resblock(lay, temb_dim, in_ch, out_ch)
      in_ch = out_ch
      if res in attn_res:
        _attn(lay, in_ch)
      hs_c.append(in_ch)
    if level != n_levels - 1:
      _resample(lay, "Downsample", in_ch, in_ch, with_conv, False)
      hs_c.append(in_ch)
      res //= 2
  in_ch = hs_c[-1]
  _ddpm_resblock(lay, temb_dim, in_ch, in_ch)
  _attn(lay, in_ch)
  _ddpm_resblock(lay, temb_dim, in_ch, in_ch)
  for level in reversed(range(n_levels)):
    for _ in range(nrb + 1):
      out_ch = nf * ch_mult[level]
      _ddpm_resblock(lay, temb_dim, in_ch + hs_c.pop(), out_ch)
      in_ch = out_ch
    if res in attn_res:
      _attn(lay, in_ch)
    if level != 0:
      _resample(lay, "Upsample", in_ch, in_ch, with_conv, False)
      res *= 2
  assert not hs_c
  s = lay.module("GroupNorm")
  s._add("scale", "weight", "scale", (in_ch,))
  s._add("bias", "bias", "bias", (in_ch,))
  top_conv(in_ch, channels)
  return lay.leaves


# ----------------------------------------------------------------------------------------------
# NCSN and NCSNv2: RefineNets (ours: models/refinenet_layers.py, ncsn.py, ncsnv2.py; release:
# models/ncsnv2.py, layers.py, normalization.py). The PyTorch port names modules by attribute
# (begin_conv, res1.0.conv1, refine2.adapt_convs.1.2_1_conv, ...), not by index; within a block
# its state dict lists the attributes in assignment order, which the `emit` calls below follow,
# while names are handed out in call order (ours and the JAX release's).


class _Node:
  """A module under construction: our path, PyTorch prefix, JAX path, per-class name counters."""

  def __init__(self, ours: Tuple[str, ...], torch: str, jax: str, jax_classes: Mapping[str, str]):
    self.ours, self.torch, self.jax, self.jax_classes = ours, torch, jax, jax_classes
    self.counts: collections.Counter = collections.Counter()
    self.jax_counts: collections.Counter = collections.Counter()

  def _name(self, cls: str) -> Tuple[str, str]:
    jcls = self.jax_classes.get(cls, cls)
    ours, jax = f"{cls}_{self.counts[cls]}", f"{jcls}_{self.jax_counts[jcls]}"
    self.counts[cls] += 1
    self.jax_counts[jcls] += 1
    return ours, jax

  def child(self, cls: str, torch_name: str) -> "_Node":
    ours, jax = self._name(cls)
    prefix = f"{self.torch}.{torch_name}" if self.torch else torch_name
    return _Node(
      self.ours + (ours,), prefix, f"{self.jax}/{jax}" if self.jax else jax, self.jax_classes
    )

  def _torch(self, name: str) -> str:
    return f"{self.torch}.{name}" if self.torch else name

  def conv(self, torch_name: str, cin: int, cout: int, k: int = 3, bias: bool = True) -> List[Leaf]:
    """An NCSN convolution: our NCSNConv_i/Conv_0, the release's Conv_i (JAX) / nn.Conv2d."""
    ours, _ = self._name("NCSNConv")
    jax = f"Conv_{self.jax_counts['Conv']}"
    self.jax_counts["Conv"] += 1
    base = self.ours + (ours, "Conv_0")
    jp = f"{self.jax}/{jax}" if self.jax else jax
    out = [
      Leaf(
        base + ("kernel",),
        self._torch(f"{torch_name}.weight"),
        f"{jp}/kernel",
        (k, k, cin, cout),
        "conv",
      )
    ]
    if bias:
      out.append(Leaf(base + ("bias",), self._torch(f"{torch_name}.bias"), f"{jp}/bias", (cout,)))
    return out

  def norm(self, torch_name: str, c: int, num_classes: Optional[int]) -> List[Leaf]:
    """InstanceNorm++ (alpha, gamma, beta), or its conditional form (one [L, 3C] table)."""
    if num_classes is None:
      ours, jax = self._name("InstanceNorm2dPlus")
      return [
        Leaf(
          self.ours + (ours, n),
          self._torch(f"{torch_name}.{n}"),
          f"{self.jax}/{jax}/{n}" if self.jax else f"{jax}/{n}",
          (c,),
          "vector",
        )
        for n in ("alpha", "gamma", "beta")
      ]
    ours, jax = self._name("ConditionalInstanceNorm2dPlus")
    jp = f"{self.jax}/{jax}" if self.jax else jax
    return [
      Leaf(
        self.ours + (ours, "embedding"),
        self._torch(f"{torch_name}.embed.weight"),
        f"{jp}/Embed_0/embedding",
        (num_classes, 3 * c),
      )
    ]


def _residual_block(
  parent: _Node,
  torch_name: str,
  cin: int,
  cout: int,
  down: bool,
  dilation: int,
  num_classes: Optional[int],
) -> List[Leaf]:
  b = parent.child("ResidualBlock", torch_name)
  norm1 = b.norm("normalize1", cin, num_classes)
  shortcut: List[Leaf] = []
  if down:
    conv1 = b.conv("conv1", cin, cin)
    norm2 = b.norm("normalize2", cin, num_classes)
    if dilation > 1:
      conv2 = b.conv("conv2", cin, cout)
      shortcut = b.conv("shortcut", cin, cout)
    else:
      conv2 = b.child("ConvMeanPool", "conv2").conv("conv", cin, cout)
      shortcut = b.child("ConvMeanPool", "shortcut").conv("conv", cin, cout, k=1)
  else:
    if cin != cout:
      shortcut = b.conv("shortcut", cin, cout, k=3 if dilation > 1 else 1)
    conv1 = b.conv("conv1", cin, cout)
    norm2 = b.norm("normalize2", cout, num_classes)
    conv2 = b.conv("conv2", cout, cout)
  return conv1 + norm2 + conv2 + shortcut + norm1


def _rcu(parent: _Node, torch_name: str, c: int, n_blocks: int, num_classes) -> List[Leaf]:
  r = parent.child("RCUBlock", torch_name)
  out: List[Leaf] = []
  for i in range(n_blocks):
    for j in range(2):
      if num_classes is not None:
        out += r.norm(f"{i + 1}_{j + 1}_norm", c, num_classes)
      out += r.conv(f"{i + 1}_{j + 1}_conv", c, c, bias=False)
  return out


def _refine_block(
  parent: _Node, torch_name: str, in_chs, features: int, start: bool, end: bool, num_classes
) -> List[Leaf]:
  rb = parent.child("RefineBlock", torch_name)
  adapt = [_rcu(rb, f"adapt_convs.{i}", c, 2, num_classes) for i, c in enumerate(in_chs)]
  msf: List[Leaf] = []
  if not start:
    m = rb.child("MSFBlock", "msf")
    convs, norms = [], []
    for i, c in enumerate(in_chs):
      if num_classes is not None:
        norms += m.norm(f"norms.{i}", c, num_classes)
      convs += m.conv(f"convs.{i}", c, features)
    msf = convs + norms
  crp = rb.child("CRPBlock", "crp")
  convs, norms = [], []
  for i in range(2):
    if num_classes is not None:
      norms += crp.norm(f"norms.{i}", features, num_classes)
    convs += crp.conv(f"convs.{i}", features, features, bias=False)
  output = _rcu(rb, "output_convs", features, 3 if end else 1, num_classes)
  return sum(adapt, []) + output + msf + convs + norms


# Per layout (models/refinenet_layers.ARCHITECTURES): the PyTorch port's attribute names of the
# residual levels (shallowest first) and of the RefineBlocks (in our call order, deepest first),
# and the order in which it assigns the RefineBlocks.
_REFINENET_TORCH = {
  "small": (
    ("res1", "res2", "res3", "res4"),
    ("refine1", "refine2", "refine3", "refine4"),
    (0, 1, 2, 3),
  ),
  "128": (
    ("res1", "res2", "res3", "res4", "res5"),
    ("refine1", "refine2", "refine3", "refine4", "refine5"),
    (0, 1, 2, 3, 4),
  ),
  "256": (
    ("res1", "res2", "res3", "res31", "res4", "res5"),
    ("refine1", "refine2", "refine31", "refine3", "refine4", "refine5"),
    (0, 1, 3, 2, 4, 5),
  ),
}


def _refinenet_layout(
  hp: Mapping, image_size: int, channels: int, num_classes: Optional[int]
) -> List[Leaf]:
  from score_sde.models.refinenet_layers import ARCHITECTURES, architecture_for

  if hp["normalization"] != "InstanceNorm++":
    raise ValueError(
      f"the release's NCSN / NCSNv2 checkpoints use InstanceNorm++, not "
      f"{hp['normalization']!r}; cannot import"
    )
  arch_name = architecture_for(image_size)
  arch = ARCHITECTURES[arch_name]
  res_names, refine_names, refine_order = _REFINENET_TORCH[arch_name]
  cond = num_classes is not None
  jax_classes = (
    {
      "ResidualBlock": "ConditionalResidualBlock",
      "RefineBlock": "CondRefineBlock",
      "RCUBlock": "CondRCUBlock",
      "MSFBlock": "CondMSFBlock",
      "CRPBlock": "CondCRPBlock",
    }
    if cond
    else {}
  )
  top = _Node(("RefineNet_0",), "", "", jax_classes)
  nf = hp["nf"]
  begin = top.conv("begin_conv", channels, nf)
  blocks: List[Leaf] = []
  widths, cin = [], nf
  for level, ((mult, dilation), name) in enumerate(zip(arch["levels"], res_names)):
    blocks += _residual_block(top, f"{name}.0", cin, mult * nf, level > 0, dilation, num_classes)
    blocks += _residual_block(top, f"{name}.1", mult * nf, mult * nf, False, dilation, num_classes)
    cin = mult * nf
    widths.append(cin)
  refines, ref_ch = [], None
  n = len(widths)
  for j, (width, mult) in enumerate(zip(reversed(widths), arch["refine"])):
    in_chs = [width] if ref_ch is None else [width, ref_ch]
    refines.append(
      _refine_block(top, refine_names[j], in_chs, mult * nf, j == 0, j == n - 1, num_classes)
    )
    ref_ch = mult * nf
  normalizer = top.norm("normalizer", ref_ch, num_classes)
  end = top.conv("end_conv", ref_ch, channels)
  return begin + normalizer + end + blocks + sum((refines[j] for j in refine_order), [])


def ncsnv2_layout(hp: Mapping, image_size: int, channels: int) -> List[Leaf]:
  """The release's NCSNv2 / NCSNv2_128 / NCSNv2_256 (by image size), unconditional norms."""
  return _refinenet_layout(hp, image_size, channels, None)


def ncsn_layout(hp: Mapping, image_size: int, channels: int) -> List[Leaf]:
  """The release's NCSN (v1): conditional InstanceNorm++ with one row per noise level."""
  if image_size >= 96:
    raise ValueError("the release defines NCSN only below 96 px; cannot import")
  return _refinenet_layout(hp, image_size, channels, int(hp["num_scales"]))


LAYOUTS = {
  "ncsnpp": ncsnpp_layout,
  "ddpm": ddpm_layout,
  "ncsnv2": ncsnv2_layout,
  "ncsn": ncsn_layout,
}


def release_layout(model_name: str, hparams: Mapping, image_size: int, channels: int) -> List[Leaf]:
  """Every parameter of network `model_name` with `hparams`, in the PyTorch port's order."""
  if model_name not in LAYOUTS:
    raise ValueError(
      f"no release checkpoint layout for model {model_name!r}; choose from {sorted(LAYOUTS)}"
    )
  from score_sde import models  # the network's defaults fill fields a config leaves out

  cls = models.get_model_class(model_name)
  hp = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
  hp.update(hparams)
  return LAYOUTS[model_name](hp, image_size, channels)


def by_ours(leaves: List[Leaf]) -> Dict[Tuple[str, ...], Leaf]:
  return {leaf.ours: leaf for leaf in leaves}
