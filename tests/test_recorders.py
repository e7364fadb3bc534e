"""course_utils.recorders: gradient and activation recorders built on hooks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.models import cifar_plain
from course_utils.recorders import GradientRecorder, gradient_norms_at_init
from course_utils.train import MixedPrecision, Progress, fit


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 3),
    )


def batch(n: int = 8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def backward_once(model: nn.Module) -> None:
    model.zero_grad(set_to_none=True)
    x, y = batch()
    F.cross_entropy(model(x), y).backward()


def quiet(*callbacks) -> list:
    return [*callbacks, Progress(bar=False, lines=False)]


def last(recorder: GradientRecorder) -> dict[str, float]:
    return {name: values[-1] for name, values in recorder.norms.items() if values}


def param_hooks(model: nn.Module) -> int:
    return sum(len(p._post_accumulate_grad_hooks or {}) for p in model.parameters())


def test_gradient_recorder_names_in_model_order_and_values_match_manual_norms():
    model = small_net()
    with GradientRecorder(model) as rec:
        backward_once(model)
    assert list(rec.norms) == ["0", "2", "5"]  # model order, although backward visits 5 first
    manual = {name: model.get_submodule(name).weight.grad.norm().item() for name in rec.norms}
    for name, values in rec.norms.items():
        assert len(values) == 1
        assert values[0] == pytest.approx(manual[name], rel=1e-6)
    assert last(rec) == pytest.approx(manual)


def test_gradient_recorder_every_and_remove():
    model = small_net()
    rec = GradientRecorder(model, layer_types=(nn.Linear,), every=3)
    for _ in range(7):
        backward_once(model)
    assert list(rec.norms) == ["5"] and len(rec.norms["5"]) == 3  # backward passes 0, 3, 6
    assert rec.mean()["5"] == pytest.approx(sum(rec.norms["5"]) / 3)
    assert param_hooks(model) == 1
    rec.remove()
    assert param_hooks(model) == 0
    backward_once(model)
    assert len(rec.norms["5"]) == 3  # nothing more recorded, nothing lost


def test_gradient_recorder_divides_out_loss_scale():
    model = small_net()
    rec = GradientRecorder(model)
    backward_once(model)
    plain = last(rec)
    rec.loss_scale = torch.tensor(1024.0)
    model.zero_grad(set_to_none=True)
    x, y = batch()
    (F.cross_entropy(model(x), y) * 1024).backward()
    assert last(rec) == pytest.approx(plain, rel=1e-5)
    rec.remove()


def test_gradient_recorder_in_fit_records_every_step():
    model = small_net()
    x, y = batch(32)
    loader = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    with GradientRecorder(model) as rec:
        fit(model, loader, epochs=2, callbacks=quiet(rec))
    assert all(len(v) == 8 for v in rec.norms.values())
    assert param_hooks(model) == 0


def test_gradient_norms_at_init_matches_recorder_and_leaves_model_alone():
    model = cifar_plain(8)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = gradient_norms_at_init(model, x, y)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert list(norms)[0] == "conv1" and list(norms)[-1] == "fc" and len(norms) == 8
    model.train()
    with GradientRecorder(model) as rec:
        F.cross_entropy(model(x), y).backward()
    assert norms == pytest.approx(last(rec), rel=1e-4)


def test_gradient_recorder_under_fp16_loss_scaling_records_true_norms():
    # fit's GradScaler multiplies the loss by 65536 before backward; the recorder must divide that back out.
    x, y = batch(32)
    loader = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    norms = {}
    for precision in ([], [MixedPrecision("fp16")]):
        model = small_net()
        with GradientRecorder(model) as rec:
            fit(model, loader, epochs=1, lr=0.01, schedule="constant", callbacks=quiet(rec, *precision))
        norms[len(precision)] = rec.norms
    for name, values in norms[0].items():
        assert norms[1][name] == pytest.approx(values, rel=0.05)


def test_state_dict_round_trip_and_refusals():
    model = small_net()
    x, y = batch(32)
    grads = GradientRecorder(model)
    fit(model, [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)], epochs=2, callbacks=quiet(grads))
    copy_grads = GradientRecorder(small_net())
    copy_grads.load_state_dict(grads.state_dict())
    assert copy_grads.norms == grads.norms and copy_grads.mean() == grads.mean() and len(grads.norms["0"]) == 8
    with pytest.raises(ValueError, match=r"This GradientRecorder has layers=\['0'\]; the saved record has \['0', '2'"):
        GradientRecorder(nn.Sequential(nn.Linear(2, 2))).load_state_dict(grads.state_dict())
    with pytest.raises(ValueError, match="This GradientRecorder has every=3; the saved record has 1"):
        GradientRecorder(model, every=3).load_state_dict(grads.state_dict())
