"""course_utils.checks: every exercise check tells the stub it is unfinished, passes the solution and rejects
a typical slip with its hint; the solution stands in, visibly, unless the learner's piece passed.

The stub, the check and the solution are taken from the notebooks themselves (the
cell with ``# YOUR CODE HERE``, the check cell after it and the collapsed solution
cell after that), so a check and the notebook it serves cannot drift apart. The
slips are written here and in ``tests/slips/nbNN.py`` (``MISTAKES``: the learner's
name -> a (wrong piece, words its hint must contain) pair, or a list of them).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from conftest import load_script, load_tool
from torch import nn

import course_utils as cu

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
solution_body = load_tool("run_notebooks").solution_body


def exercises() -> list[tuple[str, str, str, str, str]]:
    """(notebook, name, stub source, solution code, check name) for every exercise."""
    found = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        earlier = ""  # the notebook's solutions so far: a later exercise may use them (02's BatchNorm2d, bn_forward)
        for i, source in enumerate(cells):
            if "# YOUR CODE HERE" not in source:
                continue
            # The learner's function (``def name(``) or module (``class Name(nn.Module)``), whichever comes first.
            name = re.search(r"^(?:def|class) (\w+)", source, re.M).group(1)
            check, solution = cells[i + 1], cells[i + 2]
            called = re.fullmatch(rf"cu\.checks\.nb{path.stem[:2]}\.(\w+)\({name}\)", check.strip())
            assert called, (
                f"{path.name}: the cell after {name}'s stub is not cu.checks.nb{path.stem[:2]}.check_...({name})"
            )
            assert solution.startswith("# @title Solution"), f"{path.name}: no solution cell after {name}'s check"
            assert solution_body(solution)[0] == name, f"{path.name}: {name}'s solution does not stand in for it"
            found.append((path.stem[:2], name, source, earlier + solution_body(solution)[1], called.group(1)))
            earlier += solution_body(solution)[1] + "\n"
        if found and found[-1][0] == path.stem[:2]:
            assert cells[-1].startswith("cu.checks.summary()"), f"{path.name}: its last cell is not the summary"
    return found


EXERCISES = exercises()


def define(*sources: str):
    namespace = {"torch": torch, "nn": nn, "F": F, "cu": cu}
    for source in sources:
        exec(compile(source, "<notebook cell>", "exec"), namespace)
    return namespace


def check_of(notebook: str, check_name: str):
    return getattr(getattr(cu.checks, f"nb{notebook}"), check_name)


@pytest.fixture(autouse=True)
def fresh_results():
    cu.checks.reset()
    yield
    cu.checks.reset()


# --------------------------------------------------------------------------- one slip per exercise


def _wrong_channel_mean_std(images):
    x = images.float()  # forgot to divide by 255
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), correction=0)


def _wrong_output_grad_norms(model, x, y):
    # The weights' gradients instead of the outputs' gradients.
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return {n: m.weight.grad.norm().item() for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _wrong_pad_shortcut(x, stride, extra_channels):
    kept = x[:, :, ::stride, ::stride]
    zeros = kept.new_zeros(kept.shape[0], extra_channels, *kept.shape[2:])
    return torch.cat([zeros, kept], dim=1)  # zeros before the input's channels


def _wrong_bottleneck_flops(channels, width, size, stride=1):
    return 2 * size * size * (channels * width + 9 * width * width + width * channels)  # the stride forgotten


def _wrong_random_crop_flip(images, shifts, flips, padding):
    padded = F.pad(images, (padding,) * 4)
    h, w = images.shape[-2:]
    return torch.stack([p[:, dy : dy + h, dx : dx + w] for p, (dy, dx) in zip(padded, shifts.tolist())])  # no flip


def _wrong_smooth_cross_entropy(logits, targets, smoothing):
    return F.cross_entropy(logits, targets)  # smoothing ignored


def _wrong_step_lr(step, base_lr, milestones, gamma=0.1):
    return base_lr * gamma ** sum(1 for m in milestones if step > m)  # one step late at each milestone


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
    "pad_shortcut": (_wrong_pad_shortcut, "channels of zeros after the existing ones"),
    "bottleneck_flops": (_wrong_bottleneck_flops, "the 3x3 has the stride"),
    "random_crop_flip": (_wrong_random_crop_flip, "mirror it left-right"),
    "smooth_cross_entropy": (_wrong_smooth_cross_entropy, "the smoothed target"),
    "step_lr": (_wrong_step_lr, "MultiStepLR"),
    "channel_plan": (_wrong_channel_plan, "the transition after it"),
    "rgb_conv_to_grey": (_wrong_rgb_conv_to_grey, "sums its three channel slices"),
    "PreActBlock": (_PreActBlockReluAfterAdd, "remove the ReLU after the addition"),
}


for _module in sorted((Path(__file__).parent / "slips").glob("nb*.py")):  # one module of slips per notebook
    MISTAKES.update(load_script(_module, f"slips_{_module.stem}").MISTAKES)


def test_every_exercise_is_found_and_has_a_mistake_here():
    assert sorted(name for _, name, *_ in EXERCISES) == sorted(MISTAKES)


def slips(name: str) -> list[tuple[object, str]]:
    """The slips of one exercise: a single (wrong piece, words) pair or a list of them."""
    listed = MISTAKES[name]
    return listed if isinstance(listed, list) else [listed]


PARAMS = pytest.mark.parametrize("notebook, name, stub, solution, check_name", EXERCISES, ids=[e[1] for e in EXERCISES])


@PARAMS
def test_the_stub_is_told_it_is_unfinished_and_the_solution_stands_in(
    notebook, name, stub, solution, check_name, capsys
):
    piece = define(stub)[name]
    assert check_of(notebook, check_name)(piece) is False  # no traceback: the notebook goes on
    said = capsys.readouterr().out
    assert said.startswith("○ Not done yet:") and "returned None" in said and "stands in" in said, said
    assert cu.checks.stands_in(piece) is True
    assert capsys.readouterr().out == f"Your {name} is still the stub, so the solution in this cell stands in for it.\n"
    cu.checks.summary()
    assert re.search(rf"{name} +○ open: still the stub; the solution stood in", capsys.readouterr().out)


@PARAMS
def test_the_stub_is_told_what_to_replace_but_not_the_answer(notebook, name, stub, solution, check_name, capsys):
    check_of(notebook, check_name)(define(stub)[name])
    said = capsys.readouterr().out
    stands_in = "\n  Until it is, the solution cell below stands in for it.\n"
    assert re.fullmatch(
        rf"○ Not done yet: .+ returned None: replace `return None` with [^\n]+\.{re.escape(stands_in)}", said
    )
    assert "Hint" not in said and not any(re.search(words, said) for _, words in slips(name)), said  # no answer given


@PARAMS
def test_the_notebooks_solution_passes_and_then_does_not_stand_in(notebook, name, stub, solution, check_name, capsys):
    piece = define(solution)[name]
    assert check_of(notebook, check_name)(piece) is True
    assert capsys.readouterr().out.startswith("✅ Correct")
    assert cu.checks.stands_in(piece) is False and capsys.readouterr().out == ""  # the learner's piece stays
    cu.checks.summary()
    assert re.search(rf"{name} +✓ solved", capsys.readouterr().out)


@PARAMS
def test_a_typical_slip_is_rejected_with_its_hint(notebook, name, stub, solution, check_name, capsys):
    for wrong, words in slips(name):
        with pytest.raises(AssertionError, match=words) as raised:
            check_of(notebook, check_name).strict(wrong)
        assert "Hint: " in str(raised.value)  # every rejection says how to fix it
        assert check_of(notebook, check_name)(wrong) is False  # in the notebook: printed, no traceback
        said = capsys.readouterr().out
        assert said.startswith("✗ ") and re.search(words, said) and "Correct" not in said
        assert cu.checks.stands_in(wrong) is True
        assert "did not pass its check" in capsys.readouterr().out


@pytest.mark.parametrize("handed", [None, 3, "bn_forward"])
def test_a_check_handed_no_function_says_what_to_pass(handed, capsys):
    assert cu.checks.nb02.check_bn_forward(handed) is False
    said = capsys.readouterr().out
    assert said.startswith("✗ check_bn_forward takes your bn_forward itself") and "check_bn_forward(bn_forward)" in said


def test_a_correct_float32_answer_passes():
    def bn_forward(x, gamma, beta, eps=1e-5):  # right, in float32: rounding puts it ~1e-6 from the float64 reference
        x32, g, b = x.float(), gamma.float().view(1, -1, 1, 1), beta.float().view(1, -1, 1, 1)
        mean, var = x32.mean(dim=(0, 2, 3), keepdim=True), x32.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        return (x32 - mean) / (var + eps).sqrt() * g + b

    cu.checks.nb02.check_bn_forward.strict(bn_forward)


def test_a_piece_changed_after_its_check_stands_in_again(capsys):
    solution = define(next(e for e in EXERCISES if e[1] == "bn_forward")[3])["bn_forward"]
    assert cu.checks.nb02.check_bn_forward(solution)
    changed = define(next(e for e in EXERCISES if e[1] == "bn_forward")[3])["bn_forward"]  # run the cell again
    capsys.readouterr()
    assert cu.checks.stands_in(changed) is True
    assert "changed since it passed its check" in capsys.readouterr().out


def test_summary_before_any_exercise(capsys):
    cu.checks.summary()
    assert capsys.readouterr().out == "No exercise was checked in this notebook.\n"


def test_a_piece_that_passed_is_kept_for_a_later_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cu.checks._exercise, "_kept_dir", lambda: tmp_path / "exercises")

    @cu.checks.exercise("Doubler", keep=True)
    def check_doubler(cls):
        if not torch.equal(cls()(torch.ones(2)), torch.full((2,), 2.0)):
            raise AssertionError("Doubler does not double. Hint: return 2 * x.")

    assert cu.checks.yours("Doubler", fallback=nn.Identity) is nn.Identity  # nothing kept yet
    assert "Doubler: the course's. Yours is saved once it passes its check" in capsys.readouterr().out

    cell = tmp_path / "cell.py"  # a notebook cell's code, as the kernel keeps it: a file that linecache can read
    cell.write_text("x = 1\n\nclass Doubler(nn.Module):\n    def forward(self, x):\n        return 2 * x\n\nprint(x)\n")
    namespace = {"nn": nn}
    exec(compile(cell.read_text(), str(cell), "exec"), namespace)
    assert check_doubler(namespace["Doubler"])
    kept = (tmp_path / "exercises" / "Doubler.py").read_text()
    assert kept.startswith("# Your Doubler, saved when it passed its check on ") and "print" not in kept

    later = cu.checks.yours("Doubler", fallback=nn.Identity)
    assert later is not nn.Identity and later()(torch.ones(1)).item() == 2.0
    assert "Doubler: yours, from" in capsys.readouterr().out

    (tmp_path / "exercises" / "Doubler.py").write_text(
        "class Doubler(nn.Module):\n    def forward(self, x):\n        return x\n"
    )
    assert cu.checks.yours("Doubler", fallback=nn.Identity) is nn.Identity  # edited since: checked again, refused
    said = capsys.readouterr().out
    assert (
        "Doubler: the course's. Yours, in" in said and "no longer passes its check" in said and "Hint: return 2" in said
    )
    (tmp_path / "exercises" / "Doubler.py").write_text("class Doubler(nn.Module:\n")
    assert cu.checks.yours("Doubler", fallback=nn.Identity) is nn.Identity and "SyntaxError" in capsys.readouterr().out
