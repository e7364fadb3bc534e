"""Parameter counts, the shape table (forward hooks) and FLOPs."""

import pytest
import torch
import torchvision
from torch import nn

import course_utils.models as M
from course_utils import inspect as ins


def test_count_parameters():
    model = M.cifar_resnet(20)
    model.fc.weight.requires_grad_(False)
    total = ins.count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters()) == 269_722  # the paper's "0.27M"
    assert ins.count_parameters(model, trainable_only=True) == total - 64 * 10


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


def test_flops_of_resnets_as_torchvision_and_the_paper_count_them():
    # torchvision lists 3.66 and 4.09 G multiply-adds for ResNet-34 and -50; the counter, at 2 FLOPs per
    # multiply-add, reports twice that.
    with torch.device("meta"):
        r34, r50, tv50 = M.resnet34(), M.resnet50(), torchvision.models.resnet50()
    f34, f50 = ins.count_flops(r34), ins.count_flops(r50)
    assert (round(f34 / 2e9, 2), round(f50 / 2e9, 2)) == (3.66, 4.09)
    assert f50 == ins.count_flops(tv50)
    # The paper's table 1 says 3.6 and 3.8: its v1 bottleneck strides the first 1x1 conv, not the 3x3.
    for stage in (r50.layer2, r50.layer3, r50.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    assert round(ins.count_flops(r50) / 2e9, 2) == 3.86 and round(ins.count_flops(r50) / 2e9, 1) != 4.1


def test_flops_of_one_conv_are_two_per_multiply_add():
    conv = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    assert ins.count_flops(conv, (1, 16, 8, 8)) == 2 * 8 * 8 * ins.conv_weights(16, 32, 3)
    linear = nn.Linear(64, 10)
    assert ins.count_flops(nn.Sequential(nn.Flatten(), linear), (1, 64, 1, 1)) == 2 * 64 * 10
    conv.train()
    ins.count_flops(conv, (1, 16, 8, 8))
    assert conv.training  # the count runs in eval mode and restores the mode


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
