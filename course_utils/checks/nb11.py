"""Check for notebook 11: the pre-activation residual block of He et al. 2016 (arXiv:1603.05027)."""

import torch
import torch.nn.functional as F
from torch import nn

from ..models import conv1x1, conv3x3
from ._common import expect_answer, expect_close, passed
from ._exercise import exercise

_HINT = "pre = relu(bn1(x)); return conv2(relu(bn2(conv1(pre)))) + (x if downsample is None else downsample(pre))."
_SLIPS = {
    "relu": "remove the ReLU after the addition: in a pre-activation block nothing follows out + shortcut.",
    "raw": "project the pre-activated input, downsample(relu(bn1(x))), not the raw x (as the paper's code does).",
}
_CASES = [(16, 16, 1), (16, 32, 2), (8, 16, 1), (6, 6, 1), (4, 8, 2)]  # identities, projections with and without stride


class PreActBlock(nn.Module):
    """x + conv2(relu(bn2(conv1(relu(bn1(x)))))); where the shape changes, ``downsample`` projects relu(bn1(x))."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(in_planes), conv3x3(in_planes, planes, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), conv3x3(planes, planes)
        self.downsample = None if stride == 1 and in_planes == planes else conv1x1(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _outputs(self, x)["right"]


def _outputs(b: PreActBlock, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The block's output ("right") and what each slip computes with the same weights."""
    pre = F.relu(b.bn1(x))
    out = b.conv2(F.relu(b.bn2(b.conv1(pre))))
    right = out + (x if b.downsample is None else b.downsample(pre))
    return {"right": right, "relu": F.relu(right), **({} if b.downsample is None else {"raw": out + b.downsample(x)})}


@exercise("PreActBlock")
def check_preact_block(cls: type[nn.Module]) -> None:
    """``cls(in_planes, planes, stride)`` must load the reference's weights (strict) and give its outputs."""
    gen = torch.Generator().manual_seed(11)
    expect_answer(cls(4, 4, 1)(torch.randn(2, 4, 6, 6, generator=gen)), "PreActBlock(4, 4, 1)(x)", "its output", _HINT)
    for shape in _CASES:
        ref, block, what = PreActBlock(*shape), cls(*shape), f"PreActBlock{shape}"
        for t in [t for bn in (ref.bn1, ref.bn2) for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)]:
            t.data.uniform_(0.5, 1.5, generator=gen)  # fresh BN layers do nothing in eval mode: they could hide a slip
        try:
            block.load_state_dict(ref.state_dict())  # strict: the same names and shapes
        except RuntimeError as e:
            names = "bn1, conv1, bn2, conv2 and, only where the shape changes, downsample (an nn.Conv2d)"
            raise AssertionError(f"{what} cannot take the reference's weights: {e} Hint: name them {names}.") from None
        x = torch.randn(3, shape[0], 7, 7, generator=gen)
        for mode in ("eval", "train"):
            with torch.no_grad():
                got, want = block.train(mode == "train")(x.clone()), _outputs(ref.train(mode == "train"), x)
            for slip, wrong in list(want.items())[1:]:
                if isinstance(got, torch.Tensor) and got.shape == wrong.shape and torch.allclose(got, wrong, atol=1e-5):
                    raise AssertionError(f"{what} in {mode} mode does not match the reference. Hint: {_SLIPS[slip]}")
            expect_close(got, want["right"], f"{what} in {mode} mode", _HINT)
    passed(f"your PreActBlock takes the reference's weights and gives its outputs on {len(_CASES)} shapes, both modes.")
