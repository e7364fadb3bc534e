"""The widgets' formulas against real modules, and the widgets driven programmatically."""

import matplotlib
import pytest

matplotlib.use("Agg")

import course_utils.models as M  # noqa: E402
from course_utils import widgets as Wd  # noqa: E402
from course_utils.inspect import count_flops, count_parameters  # noqa: E402


def test_source_notes_arithmetic():
    # Two 3x3 convs at 256 channels vs the 256-64-64-256 bottleneck, weights only.
    assert Wd.basic_block_params(256, bn=False) == 3 * 3 * 256 * 256 * 2 == 1_179_648
    assert Wd.bottleneck_params(256, 64, bn=False) == 256 * 64 + 3 * 3 * 64 * 64 + 64 * 256 == 69_632


@pytest.mark.parametrize("channels, width", [(64, 16), (256, 64), (512, 128)])
def test_block_formulas_equal_real_blocks(channels, width):
    basic = M.BasicBlock(channels, channels)
    bottleneck = M.Bottleneck(channels, channels // 4, base_width=64 * width // (channels // 4))
    assert count_parameters(basic) == Wd.basic_block_params(channels, bn=True)
    assert count_parameters(bottleneck) == Wd.bottleneck_params(channels, width, bn=True)
    n = Wd.block_comparison_expected(channels, width, bn=True, bias=False, size=14)
    assert n["basic_flops"] == count_flops(basic, (1, channels, 14, 14))
    assert n["bottleneck_flops"] == count_flops(bottleneck, (1, channels, 14, 14))


def test_resnext_formula_and_paper_table2():
    grouped = M.grouped_block(256, cardinality=32, bottleneck_width=4)
    bn = 2 * (128 + 128 + 256)
    assert Wd.resnext_comparison_expected(32, 4)["resnext_params"] == count_parameters(grouped) - bn
    # ResNeXt paper, table 2: d for each cardinality at about the same complexity.
    assert {c: Wd.equal_budget_width(c) for c in (1, 2, 4, 8, 32)} == {1: 64, 2: 40, 4: 24, 8: 14, 32: 4}


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
        for number in box.expected(**values).values():
            if isinstance(number, int):
                assert f"{number:,}" in box.readout.value, (key, new, number)


def test_resnet_explorer_matches_torchvision_counts():
    import torchvision

    n = Wd.resnet_explorer_expected(depth=101, base=64, size=224)
    reference = torchvision.models.resnet101()
    assert n["params"] == count_parameters(reference)
    assert n["shapes"]["layer4"] == (2048, 7, 7)
    assert sum(n["stage_params"].values()) == n["params"]
    assert n["stage_params"]["layer3"] == count_parameters(reference.layer3)
