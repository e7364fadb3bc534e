"""Parameter counts, the shape table (forward hooks) and FLOPs."""

import pytest
import torch
import torchvision
from torch import nn

import course_utils.models as M
from course_utils import inspect as ins


def test_count_parameters_and_summary():
    model = M.cifar_resnet(20)
    model.fc.weight.requires_grad_(False)
    s = ins.parameter_summary(model)
    assert s["total"] == sum(p.numel() for p in model.parameters())
    assert s["trainable"] == s["total"] - model.fc.weight.numel()
    assert sum(v for k, v in s.items() if k not in ("total", "trainable")) == s["total"]


def test_layer_table_traces_resnet34_stages():
    rows = {r.name: r for r in ins.layer_table(M.resnet34(), (1, 3, 224, 224), depth=1)}
    assert [rows[n].output_shape[-1] for n in ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4")] == [
        112,
        56,
        56,
        28,
        14,
        7,
    ]
    assert rows["layer4"].output_shape == (1, 512, 7, 7)
    assert rows["fc"].output_shape == (1, 1000)


def test_layer_table_removes_its_hooks_even_on_error():
    model = M.resnet18()
    with pytest.raises(ValueError):
        ins.layer_table(model, (1, 1, 64, 64))  # wrong channel count: the model raises
    assert all(not m._forward_hooks for m in model.modules())
    ins.layer_table(model, (1, 3, 64, 64))
    assert all(not m._forward_hooks for m in model.modules())


def test_summary_prints_total():
    text = ins.summary(M.resnet18(), (1, 3, 64, 64))
    assert "11,689,512" in text and "layer4" in text


def test_flops_match_paper_convention():
    # torchvision's model tables list 3.66 and 4.09 G multiply-adds for ResNet-34 and -50 (the paper's table 1
    # rounds differently: 3.6 and 3.8); at 2 FLOPs per multiply-add the counter reports twice that.
    f34 = ins.count_flops(M.resnet34())
    f50 = ins.count_flops(M.resnet50())
    assert round(f34 / 2e9, 1) == 3.7 and round(f50 / 2e9, 1) == 4.1
    assert f50 == ins.count_flops(torchvision.models.resnet50())


def test_flops_of_one_conv_are_two_per_multiply_add():
    conv = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    assert ins.count_flops(conv, (1, 16, 8, 8)) == 2 * 8 * 8 * ins.conv_weights(16, 32, 3)
    by_child = ins.count_flops(M.cifar_resnet(20), (1, 3, 32, 32), per_module=True)
    assert by_child["total"] == sum(v for k, v in by_child.items() if k != "total")


def test_conv_weights():
    assert ins.conv_weights(256, 256, 3) == 589_824
    assert ins.conv_weights(128, 128, 3, groups=32) == 3 * 3 * 4 * 128
    with pytest.raises(ValueError, match="groups=3 must divide"):
        ins.conv_weights(64, 64, 3, groups=3)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ins.layer_table(M.resnet18(), (3, 224, 224))


def test_count_on_meta_device_is_instant_and_equal():
    with torch.device("meta"):
        big = M.resnet152()
    assert ins.count_parameters(big) == 60_192_808
