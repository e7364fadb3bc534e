"""The widgets' numbers against real modules, their text and colours, and the widgets driven programmatically."""

import math

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from torch import nn  # noqa: E402

import course_utils.models as M  # noqa: E402
from course_utils import plots  # noqa: E402
from course_utils import widgets as Wd  # noqa: E402
from course_utils.inspect import count_flops, count_parameters, layer_table  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_source_notes_arithmetic():
    # Two 3x3 convs at 256 channels vs the 256-64-64-256 bottleneck, weights only.
    assert Wd.basic_block_params(256, bn=False) == 3 * 3 * 256 * 256 * 2 == 1_179_648
    assert Wd.bottleneck_params(256, 64, bn=False) == 256 * 64 + 3 * 3 * 64 * 64 + 64 * 256 == 69_632


@pytest.mark.parametrize(
    "channels, width, bn", [(64, 16, False), (256, 64, True), (512, 128, False), (1024, 512, True)]
)
def test_block_comparison_numbers_equal_real_blocks(channels, width, bn):
    """Parameters and FLOPs the widget shows, against real blocks with BN (or with BN swapped for nn.Identity)."""
    norm = None if bn else (lambda c: nn.Identity())
    basic = M.BasicBlock(channels, channels, norm_layer=norm)
    planes = channels // 4  # a Bottleneck outputs 4 * planes; base_width sets its inner width to `width`
    bottleneck = M.Bottleneck(channels, planes, base_width=64 * width // planes, norm_layer=norm)
    assert bottleneck.conv2.out_channels == width
    n = Wd.block_comparison_expected(channels, width, bn=bn, bias=False, size=28)
    assert n["basic_params"] == count_parameters(basic) == Wd.basic_block_params(channels, bn=bn)
    assert n["bottleneck_params"] == count_parameters(bottleneck) == Wd.bottleneck_params(channels, width, bn=bn)
    assert n["basic_flops"] == count_flops(basic, (1, channels, 28, 28))
    assert n["bottleneck_flops"] == count_flops(bottleneck, (1, channels, 28, 28))


def test_conv_bias_counts_one_per_output_channel():
    with_bias = Wd.block_comparison_expected(256, 64, bn=True, bias=True, size=7)
    without = Wd.block_comparison_expected(256, 64, bn=True, bias=False, size=7)
    assert with_bias["basic_params"] - without["basic_params"] == 2 * 256
    assert with_bias["bottleneck_params"] - without["bottleneck_params"] == 64 + 64 + 256


@pytest.mark.parametrize("cardinality, width", [(1, 64), (32, 4), (8, 14), (64, 2)])
def test_resnext_comparison_numbers_equal_real_blocks(cardinality, width):
    block = M.Bottleneck(256, 64, groups=cardinality, base_width=width)  # width 64 * width / 64 * cardinality
    conv_weights = sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Conv2d))
    n = Wd.resnext_comparison_expected(cardinality, width)
    assert n["resnext_params"] == conv_weights
    assert n["resnet_params"] == 69_632  # the ResNet bottleneck 256 -> 64 -> 256
    assert n["equal_budget_width"] == Wd.equal_budget_width(cardinality)


def test_equal_budget_width_reproduces_resnext_paper_table2():
    # ResNeXt paper, table 2: d for each cardinality at about the same complexity.
    assert {c: Wd.equal_budget_width(c) for c in (1, 2, 4, 8, 32)} == {1: 64, 2: 40, 4: 24, 8: 14, 32: 4}


def test_resnet_explorer_numbers_equal_real_resnet34():
    n = Wd.resnet_explorer_expected(depth=34, base=64, size=224)
    with torch.device("meta"):
        model = M.resnet34()
    assert n["params"] == count_parameters(model) == 21_797_672
    assert n["flops"] == count_flops(model, (1, 3, 224, 224))
    traced = {r.name: r.output_shape[1:] for r in layer_table(model, (1, 3, 224, 224), depth=1)}
    assert n["shapes"] == {k: traced[k] for k in n["shapes"]}
    assert list(n["shapes"]) == ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "fc"]
    # What the lesson asks a learner to try: a 32x32 input leaves layer4 with a 1x1 map and the same parameters;
    # half the width gives about a quarter of the parameters.
    cifar_size, half_width = Wd.resnet_explorer_expected(34, 64, 32), Wd.resnet_explorer_expected(34, 32, 224)
    assert cifar_size["shapes"]["layer4"] == (512, 1, 1) and cifar_size["params"] == n["params"]
    assert 3.5 < n["params"] / half_width["params"] < 4.1
    # The chart: most weights in layer4, the largest output from the stem, the smallest from layer4.
    stage_params = n["stage_params"]
    outputs = {k: math.prod(n["shapes"][k]) for k in ("conv1", "layer1", "layer2", "layer3", "layer4")}
    assert sum(stage_params.values()) == n["params"]
    assert max(stage_params, key=stage_params.get) == "layer4" and stage_params["layer4"] > n["params"] / 2
    assert max(outputs, key=outputs.get) == "conv1" and min(outputs, key=outputs.get) == "layer4"


def test_resnet_explorer_matches_torchvision_resnet101():
    n = Wd.resnet_explorer_expected(depth=101, base=64, size=224)
    with torch.device("meta"):
        reference = torchvision.models.resnet101()
    assert n["params"] == count_parameters(reference)
    assert n["shapes"]["layer4"] == (2048, 7, 7)
    assert n["stage_params"]["layer3"] == count_parameters(reference.layer3)


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_resnet_explorer_states_the_channels_it_shows(depth):
    """The readout's channel counts are the stages' real output channels, for basic and bottleneck blocks alike."""
    box = Wd.resnet_explorer(depth=depth, base=32)
    shapes = box.expected(depth=depth, base=32, size=224)["shapes"]
    channels = "/".join(str(shapes[f"layer{i}"][0]) for i in range(1, 5))
    text = box.readout.value
    assert f"stages of {channels} channels" in text
    block = "BasicBlock" if depth < 50 else "Bottleneck"
    assert f"{block}s" in text
    assert channels == ("32/64/128/256" if depth < 50 else "128/256/512/1024")
    assert ("32/64/128/256 inside the blocks" in text) == (depth >= 50)  # a bottleneck's inner width, said as such
    weights_chart = plt.gcf().axes[0]
    assert all(bar.get_facecolor() == to_rgba(plots.BLOCK_COLOURS[block]) for bar in weights_chart.patches)


def test_block_comparison_uses_the_block_colours():
    """The widget colours each block as the lesson's figures do (course_utils.plots.BLOCK_COLOURS)."""
    assert plots.BLOCK_COLOURS["BasicBlock"] != plots.BLOCK_COLOURS["Bottleneck"]
    Wd.block_comparison()
    ax = plt.gcf().axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["BasicBlock", "Bottleneck"]
    assert [bar.get_facecolor() for bar in ax.patches] == [to_rgba(plots.BLOCK_COLOURS[name]) for name in labels]


@pytest.mark.parametrize("name", sorted(Wd.WIDGETS))
def test_widget_readout_follows_controls(name):
    box = Wd.WIDGETS[name]()
    values = {k: c.value for k, c in box.controls.items()}
    for key, control in box.controls.items():
        if hasattr(control, "options"):
            new = control.options[-1]
        elif isinstance(control.value, bool):
            new = not control.value
        else:
            new = control.min if control.value != control.min else control.max
        control.value = new
        values[key] = new
        numbers = [v for v in box.expected(**values).values() if isinstance(v, int)]
        assert numbers
        for number in numbers:
            assert f"{number:,}" in box.readout.value, (key, new, number)
