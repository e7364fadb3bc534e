"""The course's models against torchvision and against the papers' tables."""

import pytest
import torch
import torchvision
from torch import nn

import course_utils.models as M
from course_utils.inspect import count_parameters

# Factories that share their name, structure and state-dict keys with torchvision.models.
TORCHVISION_FACTORIES = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "densenet121",
]


@pytest.mark.parametrize("name", TORCHVISION_FACTORIES)
def test_factory_has_torchvision_structure(name):
    """Same parameter count; state dicts load both ways with strict=True (same names and shapes)."""
    with torch.device("meta"):  # shapes without data: even ResNet-152 is built at once
        ref, ours = getattr(torchvision.models, name)(), getattr(M, name)()
    assert count_parameters(ours) == count_parameters(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.load_state_dict(ours.state_dict(), strict=True)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "densenet121"])
def test_factory_computes_what_torchvision_computes(name):
    """With torchvision's weights, the same outputs, bit for bit, in eval mode (one model per kind of block)."""
    torch.manual_seed(0)
    ref, ours = getattr(torchvision.models, name)().eval(), getattr(M, name)().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


# The ResNet paper, table 6: parameters of the CIFAR-10 ResNets (option A), as printed.
PAPER_CIFAR_PARAMS = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M"}


@pytest.mark.parametrize("depth", PAPER_CIFAR_PARAMS)
def test_cifar_resnet_parameter_counts_match_paper(depth):
    n = count_parameters(M.cifar_resnet(depth))
    printed = PAPER_CIFAR_PARAMS[depth]
    decimals = len(printed.split(".")[1]) - 1
    assert f"{n / 1e6:.{decimals}f}M" == printed


@pytest.mark.parametrize("depth", [20, 56])
def test_plain_network_has_same_layers_without_shortcuts(depth):
    plain, res = M.cifar_plain(depth), M.cifar_resnet(depth)
    # Option A shortcuts have no parameters, so plain and residual nets are the same size.
    assert count_parameters(plain) == count_parameters(res)
    assert all(not b.residual for b in plain.modules() if isinstance(b, M.BasicBlock))
    assert plain(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # The twins' state dicts interchange, yet their reprs (a fingerprint of the architecture) differ in every block.
    res.load_state_dict(plain.state_dict(), strict=True)
    plain_blocks = [repr(b) for b in plain.modules() if isinstance(b, M.BasicBlock)]
    res_blocks = [repr(b) for b in res.modules() if isinstance(b, M.BasicBlock)]
    assert len(plain_blocks) == len(res_blocks) == 3 * (depth - 2) // 6
    assert all("residual=False" in p and "residual=False" not in r for p, r in zip(plain_blocks, res_blocks))


SMALL_BOTTLENECK_NET = dict(block=M.Bottleneck, layers=[1, 1, 1, 1], widths=(4, 8, 8, 8), stem="cifar")


@pytest.mark.parametrize(
    "build",
    [
        lambda **kw: M.cifar_resnet(8, shortcut="B", **kw),
        lambda **kw: M.cifar_resnet(8, shortcut="C", **kw),
        lambda **kw: M.ResNet(**SMALL_BOTTLENECK_NET, **kw),
    ],
)
def test_plain_network_without_shortcuts_has_no_projections(build):
    # A projection in a plain network would hold weights that nothing uses.
    plain = build(residual=False)
    assert all(b.downsample is None for b in plain.modules() if isinstance(b, (M.BasicBlock, M.Bottleneck)))
    assert count_parameters(plain) < count_parameters(build())
    plain(torch.randn(2, 3, 16, 16)).sum().backward()
    assert all(p.grad is not None for p in plain.parameters())


def test_shortcut_options_a_b_c():
    a, b, c = (count_parameters(M.cifar_resnet(20, shortcut=s)) for s in "ABC")
    assert a < b < c
    # B adds a 1x1 projection + BN at the two places the shape changes (16->32, 32->64).
    assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    # C projects on every one of the 9 blocks.
    proj = sum(
        isinstance(blk.downsample, torch.nn.Sequential)
        for blk in M.cifar_resnet(20, shortcut="C").modules()
        if isinstance(blk, M.BasicBlock)
    )
    assert proj == 9


def test_option_a_shortcut_pads_zero_channels():
    sc = M.PadShortcut(stride=2, extra_channels=16)
    x = torch.randn(2, 16, 8, 8)
    y = sc(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.all(y[:, 16:] == 0)
    assert count_parameters(sc) == 0


def test_cifar_stem_for_imagenet_resnets():
    m = M.resnet18(num_classes=10, stem="cifar")
    assert isinstance(m.maxpool, torch.nn.Identity) and m.conv1.kernel_size == (3, 3)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # Only conv1 changes: 3x3x3x64 instead of 7x7x3x64, and the 10-way classifier.
    ref = M.resnet18(num_classes=10)
    assert count_parameters(ref) - count_parameters(m) == (49 - 9) * 3 * 64


def test_resnet_from_one_function_and_widths():
    with torch.device("meta"):
        assert count_parameters(M.resnet(50)) == count_parameters(torchvision.models.resnet50())
        wide = M.resnet(18, widths=(32, 64, 128, 256), num_classes=10)
    assert wide.fc.in_features == 256
    with pytest.raises(ValueError, match="table 1"):
        M.resnet(42)


def test_mnist_input_channels():
    m = M.resnet18(in_channels=1, num_classes=10, stem="cifar")
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("form", [M.SplitTransformMerge, M.EarlyConcat])
def test_resnext_three_forms_equivalent(form, train):
    torch.manual_seed(0)
    grouped = M.Bottleneck(256, 64, groups=32, base_width=4)  # form (c): 32 paths of width 4
    # Non-trivial BN statistics and affine parameters, so the copy of each is tested.
    with torch.no_grad():
        for bn in (grouped.bn1, grouped.bn2, grouped.bn3):
            bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.1, 0.1), bn.running_var.uniform_(0.5, 2)
    other = M.copy_from_grouped(form(256, 32, 4), grouped)
    grouped.train(train), other.train(train)
    x = torch.randn(4, 256, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(other(x), grouped(x), atol=1e-5, rtol=1e-5)
    assert count_parameters(other) == count_parameters(grouped)


def test_form_c_is_resnext50_first_stage_block():
    block = M.resnext50_32x4d().layer1[1]
    assert block.conv2.groups == 32 and block.conv2.in_channels == 128
    assert count_parameters(block) == count_parameters(M.Bottleneck(256, 64, groups=32, base_width=4))


def test_densenet_concatenates():
    block = M.DenseBlock(num_layers=4, num_input_features=16, bn_size=4, growth_rate=12)
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 16 + 4 * 12, 8, 8)
    # Stem 8 channels; each block adds 2 x 4, each transition halves: 8 -> 16 -> 8 -> 16 -> 8 -> 16.
    small = M.cifar_densenet(growth_rate=4, block_config=(2, 2, 2))
    assert small.num_features == 16 and small(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # The DenseNet paper, table 2: DenseNet-BC with L = 100, k = 12 has 0.8M parameters.
    with torch.device("meta"):
        assert f"{count_parameters(M.cifar_densenet()) / 1e6:.1f}M" == "0.8M"


@pytest.mark.parametrize(
    "call, error, message",
    [
        (
            lambda: M.resnet18()(torch.randn(3, 224, 224)),
            ValueError,
            r"\(N, 3, H, W\), got shape \(3, 224, 224\).*unsqueeze",
        ),
        (
            lambda: M.resnet18()(torch.randn(1, 1, 64, 64)),
            ValueError,
            r"\(N, 3, H, W\).*\(1, 1, 64, 64\).*in_channels=1",
        ),
        (lambda: M.resnet18()(torch.zeros(1, 3, 64, 64, dtype=torch.uint8)), TypeError, r"floating-point.*uint8"),
        (lambda: M.cifar_resnet(21)(torch.randn(1, 3, 32, 32)), ValueError, r"6n\+2.*got 21"),
        (lambda: M.cifar_resnet(20, shortcut="D"), ValueError, r"options 'A', 'B', 'C'; got 'D'"),
        (
            lambda: M.Bottleneck(256, 64, groups=0),
            ValueError,
            r"must be positive; got planes=64, base_width=64, groups=0",
        ),
        (lambda: M.SplitTransformMerge(256, cardinality=0), ValueError, r"cardinality must be a positive integer"),
        (
            lambda: M.cifar_plain(20)(torch.randn(2, 32, 32, 3)),
            ValueError,
            r"\(N, 3, H, W\), got shape \(2, 32, 32, 3\)",
        ),
        (lambda: M.BasicBlock(64, 64, groups=32), ValueError, r"groups=1, base_width=64.*use Bottleneck"),
        (lambda: M.ResNet(M.BasicBlock, [2, 2]), ValueError, r"3 or 4 stages.*got \[2, 2\]"),
        (
            lambda: M.ResNet(M.BasicBlock, [2, 2, 2]),
            ValueError,
            r"one positive number per stage.*\(64, 128, 256, 512\)",
        ),
        (lambda: M.resnet18(stem="tiny"), ValueError, r"'imagenet'.*'cifar'.*got 'tiny'"),
        (lambda: M.densenet121()([1, 2]), TypeError, r"tensor of shape \(N, 3, H, W\), got list"),
    ],
)
def test_bad_input_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_depth_counts_weighted_layers_on_the_main_path():
    for model, depth in [(M.cifar_plain(56), 56), (M.cifar_resnet(20), 20), (M.resnet(34), 34)]:
        on_main_path = [
            m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and "downsample" not in n
        ]
        assert model.depth == len(on_main_path) == depth
    with torch.device("meta"):
        assert M.resnet152().depth == 152 and M.resnext50_32x4d().depth == 50
