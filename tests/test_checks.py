"""course_utils.checks: every exercise check rejects the stub and a typical mistake, and passes the solution.

The stub and the solution are taken from the notebooks themselves (the cell with
``# YOUR CODE HERE`` and the collapsed ``# Solution`` cell after it), so a check
and the notebook it serves cannot drift apart. The mistakes are written here,
one slip a learner makes, each with the words the check's message must contain.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_utils as cu

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def exercises() -> list[tuple[str, str, str, str, str]]:
    """(notebook, function name, stub source, solution source, check name) for every exercise."""
    found = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        for i, source in enumerate(cells):
            if "# YOUR CODE HERE" not in source:
                continue
            # The learner's function (``def name(``) or module (``class Name(nn.Module)``), whichever comes first.
            name = source.split("def " if source.lstrip().startswith("def ") else "class ", 1)[1].split("(", 1)[0]
            solution, check = cells[i + 1], cells[i + 2]
            assert solution.startswith("# @title Solution"), f"{path.name}: no solution cell after the stub of {name}"
            assert "stands in for it" in solution, f"{path.name}: {name}'s solution does not say when it stands in"
            assert f"({name})" in check, f"{path.name}: the cell after {name}'s solution does not check it"
            check_name = check.split("(", 1)[0].strip().rsplit(".", 1)[1]
            found.append((path.stem[:2], name, source, solution, check_name))
    return found


EXERCISES = exercises()


def define(*sources: str):
    namespace = {"torch": torch, "nn": nn, "F": F, "cu": cu}
    for source in sources:
        exec(compile(source, "<notebook cell>", "exec"), namespace)
    return namespace


def run_check(notebook: str, check_name: str, fn) -> None:
    getattr(getattr(cu.checks, f"nb{notebook}"), check_name)(fn)


# --------------------------------------------------------------------------- one slip per exercise


def _wrong_channel_mean_std(images):
    x = images.float()  # forgot to divide by 255
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), correction=0)


def _wrong_output_grad_norms(model, x, y):
    # The weights' gradients instead of the outputs' gradients.
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return {n: m.weight.grad.norm().item() for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _wrong_bn_forward(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / (var.sqrt() + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)  # eps outside


def _wrong_running_stats(running_mean, running_var, x, momentum=0.1):
    mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)  # the biased variance
    return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var


def _wrong_pad_shortcut(x, stride, extra_channels):
    kept = x[:, :, ::stride, ::stride]
    zeros = kept.new_zeros(kept.shape[0], extra_channels, *kept.shape[2:])
    return torch.cat([zeros, kept], dim=1)  # zeros before the input's channels


def _wrong_bottleneck_flops(channels, width, size, stride=1):
    return 2 * size * size * (channels * width + 9 * width * width + width * channels)  # the stride forgotten


def _wrong_conv_output_size(size, kernel, stride=1, padding=0):
    return (size - kernel) // stride + 1  # padding forgotten


def _wrong_random_crop_flip(images, shifts, flips, padding):
    padded = F.pad(images, (padding,) * 4)
    h, w = images.shape[-2:]
    return torch.stack([p[:, dy : dy + h, dx : dx + w] for p, (dy, dx) in zip(padded, shifts.tolist())])  # no flip


def _wrong_smooth_cross_entropy(logits, targets, smoothing):
    return F.cross_entropy(logits, targets)  # smoothing ignored


def _wrong_step_lr(step, base_lr, milestones, gamma=0.1):
    return base_lr * gamma ** sum(1 for m in milestones if step > m)  # one step late at each milestone


def _wrong_grouped_conv_params(in_channels, out_channels, kernel_size, groups):
    return kernel_size * kernel_size * in_channels * out_channels  # groups ignored


def _wrong_channel_plan(num_init_features, growth_rate, block_config):
    plan, channels = [], num_init_features
    for num_layers in block_config:
        plan.append([channels + i * growth_rate for i in range(num_layers)])
        channels += num_layers * growth_rate  # the transitions' halving forgotten
    return plan


def _wrong_rgb_conv_to_grey(conv):
    grey = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
    with torch.no_grad():
        grey.weight.copy_(conv.weight.mean(dim=1, keepdim=True))  # the mean, where a grey image needs the sum
        if conv.bias is not None:
            grey.bias.copy_(conv.bias)
    return grey


class _PreActBlockReluAfterAdd(nn.Module):
    """The v1 habit carried over: a ReLU after the addition."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(in_planes), nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        same = stride == 1 and in_planes == planes
        self.downsample = None if same else nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x):
        pre = torch.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        return torch.relu(self.conv2(torch.relu(self.bn2(self.conv1(pre)))) + shortcut)


MISTAKES = {
    "channel_mean_std": (_wrong_channel_mean_std, "255 times too large"),
    "output_grad_norms": (_wrong_output_grad_norms, "with respect to the layer.s .output. .not its weight."),
    "bn_forward": (_wrong_bn_forward, "eps goes inside the square root"),
    "update_running_stats": (_wrong_running_stats, "biased batch variance"),
    "pad_shortcut": (_wrong_pad_shortcut, "channels of zeros after the existing ones"),
    "bottleneck_flops": (_wrong_bottleneck_flops, "the 3x3 has the stride"),
    "conv_output_size": (_wrong_conv_output_size, "pad the input on both sides"),
    "random_crop_flip": (_wrong_random_crop_flip, "mirror it left-right"),
    "smooth_cross_entropy": (_wrong_smooth_cross_entropy, "the smoothed target"),
    "step_lr": (_wrong_step_lr, "MultiStepLR"),
    "grouped_conv_params": (_wrong_grouped_conv_params, "separate convolutions"),
    "channel_plan": (_wrong_channel_plan, "the transition after it"),
    "rgb_conv_to_grey": (_wrong_rgb_conv_to_grey, "sums its three channel slices"),
    "PreActBlock": (_PreActBlockReluAfterAdd, "remove the ReLU after the addition"),
}


def test_every_exercise_is_found_and_has_a_mistake_here():
    assert sorted(name for _, name, *_ in EXERCISES) == sorted(MISTAKES)


@pytest.mark.parametrize("notebook, name, stub, solution, check_name", EXERCISES, ids=[e[1] for e in EXERCISES])
def test_check_rejects_the_stub(notebook, name, stub, solution, check_name):
    with pytest.raises(AssertionError, match=r"returned None: replace `return None` with"):
        run_check(notebook, check_name, define(stub)[name])


@pytest.mark.parametrize("notebook, name, stub, solution, check_name", EXERCISES, ids=[e[1] for e in EXERCISES])
def test_check_passes_the_notebooks_solution(notebook, name, stub, solution, check_name, capsys):
    namespace = define(stub, solution)
    notice = capsys.readouterr().out
    assert notice.startswith(f"{name} still returns None"), notice  # the solution says that it stands in
    run_check(notebook, check_name, namespace[name])
    assert capsys.readouterr().out.startswith("✅ Correct")


@pytest.mark.parametrize("notebook, name, stub, solution, check_name", EXERCISES, ids=[e[1] for e in EXERCISES])
def test_check_rejects_a_typical_mistake(notebook, name, stub, solution, check_name, capsys):
    wrong, words = MISTAKES[name]
    with pytest.raises(AssertionError, match=words) as raised:
        run_check(notebook, check_name, wrong)
    assert "Correct" not in capsys.readouterr().out
    assert "Hint: " in str(raised.value)  # every rejection says how to fix it
