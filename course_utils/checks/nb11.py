"""Check for notebook 11: the pre-activation residual block of He et al. 2016 (arXiv:1603.05027)."""

import torch
import torch.nn.functional as F
from torch import nn

from ..models import conv1x1, conv3x3
from ._common import exercise, match_module, passed

_HINT = {
    "out": "pre = relu(bn1(x)); return conv2(relu(bn2(conv1(pre)))) + (x if downsample is None else downsample(pre)).",
    "names": "name them bn1, conv1, bn2, conv2 and, only where the shape changes, downsample (an nn.Conv2d).",
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
        pre = F.relu(self.bn1(x))
        return self.conv2(F.relu(self.bn2(self.conv1(pre)))) + (x if self.downsample is None else self.downsample(pre))


def _slips(ref: PreActBlock, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    out, down = ref(x), ref.downsample
    raw = [] if down is None else [(_HINT["raw"], out - down(F.relu(ref.bn1(x))) + down(x))]  # the other shortcut
    return [(_HINT["relu"], F.relu(out)), *raw]


@exercise("PreActBlock")
def check_preact_block(cls: type[nn.Module]) -> None:
    """``cls(in_planes, planes, stride)`` must load the reference's weights (strict) and give its outputs."""
    for shape in _CASES:
        mine, ref, what = cls(*shape), PreActBlock(*shape), f"PreActBlock{shape}"
        match_module(mine, ref, (3, shape[0], 7, 7), what, _HINT["out"], _HINT["names"], _slips)
    passed(f"your PreActBlock takes the reference's weights and gives its outputs on {len(_CASES)} shapes, both modes.")
