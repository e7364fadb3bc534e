"""BatchNorm2d from scratch must match torch.nn.BatchNorm2d exactly (to 1e-5 or better)."""

import pytest
import torch
from torch import nn

from course_utils.layers import BatchNorm2d

TOL = dict(atol=1e-6, rtol=1e-5)


def pair(channels=5, **kwargs):
    torch.manual_seed(0)
    ours, ref = BatchNorm2d(channels, **kwargs), nn.BatchNorm2d(channels, **kwargs)
    if kwargs.get("affine", True):
        with torch.no_grad():
            for m in (ours, ref):
                m.weight.copy_(torch.linspace(0.5, 1.5, channels))
                m.bias.copy_(torch.linspace(-0.3, 0.3, channels))
    return ours, ref


def test_same_parameters_and_buffers():
    ours, ref = pair()
    assert list(dict(ours.named_parameters())) == list(dict(ref.named_parameters())) == ["weight", "bias"]
    assert list(dict(ours.named_buffers())) == list(dict(ref.named_buffers()))
    assert ours.num_batches_tracked.dtype == ref.num_batches_tracked.dtype == torch.long


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_train_mode_forward_and_running_stats(momentum):
    ours, ref = pair(momentum=momentum)
    for step in range(4):
        x = torch.randn(8, 5, 6, 7) * (step + 1) + step
        torch.testing.assert_close(ours(x), ref(x), **TOL)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, **TOL)
    torch.testing.assert_close(ours.running_var, ref.running_var, **TOL)
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 4


def test_eval_mode_uses_running_statistics():
    ours, ref = pair()
    for _ in range(3):
        x = torch.randn(16, 5, 4, 4) * 2 + 1
        ours(x), ref(x)
    ours.eval(), ref.eval()
    x = torch.randn(3, 5, 4, 4)
    torch.testing.assert_close(ours(x), ref(x), **TOL)
    # In eval mode an image's output does not depend on its batch.
    torch.testing.assert_close(ours(x[:1]), ours(x)[:1], **TOL)


@pytest.mark.parametrize("training", [True, False])
def test_gradients_match(training):
    ours, ref = pair()
    ours.train(training), ref.train(training)
    x = torch.randn(6, 5, 3, 3, dtype=torch.float64)
    ours, ref = ours.double(), ref.double()
    grad_out = torch.randn(6, 5, 3, 3, dtype=torch.float64)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    for m, xi in zip((ours, ref), xs):
        m(xi).backward(grad_out)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, atol=1e-10, rtol=1e-8)


def test_state_dict_exchange_both_ways():
    ours, ref = pair()
    for _ in range(3):
        ref(torch.randn(8, 5, 2, 2) + 3)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.eval(), ref.eval()
    x = torch.randn(4, 5, 2, 2)
    torch.testing.assert_close(ours(x), ref(x), **TOL)

    ours.train()
    for _ in range(2):
        ours(torch.randn(8, 5, 2, 2) - 1)
    fresh = nn.BatchNorm2d(5)
    fresh.load_state_dict(ours.state_dict(), strict=True)
    ours.eval(), fresh.eval()
    torch.testing.assert_close(fresh(x), ours(x), **TOL)


def test_no_affine_and_no_tracking():
    ours, ref = pair(affine=False, track_running_stats=False)
    x = torch.randn(4, 5, 3, 3)
    ours.eval(), ref.eval()  # without running stats even eval mode uses the batch
    torch.testing.assert_close(ours(x), ref(x), **TOL)
    assert ours.weight is None and ours.running_mean is None


@pytest.mark.parametrize("momentum", [0.1, None])
def test_empty_batch_keeps_running_statistics_as_nn_does(momentum):
    ours, ref = pair(momentum=momentum)
    for x in (torch.randn(8, 5, 3, 3) + 1, torch.empty(0, 5, 3, 3), torch.randn(8, 5, 3, 3) * 2):
        out, expected = ours(x), ref(x)
        assert out.shape == expected.shape and out.dtype == expected.dtype
        torch.testing.assert_close(out, expected, **TOL)
        torch.testing.assert_close(ours.running_mean, ref.running_mean, **TOL)
        torch.testing.assert_close(ours.running_var, ref.running_var, **TOL)
        assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked)
    assert torch.isfinite(ours.running_mean).all() and torch.isfinite(ours.running_var).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input_gives_output_of_its_dtype(dtype):
    ours, ref = pair()  # float32 parameters and statistics, as under mixed precision
    x = (torch.randn(8, 5, 6, 6) * 3 + 2).to(dtype)
    for training in (True, False):
        ours.train(training), ref.train(training)
        out, expected = ours(x), ref(x)
        assert out.dtype == expected.dtype == dtype
        torch.testing.assert_close(out, expected, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, **TOL)
    torch.testing.assert_close(ours.running_var, ref.running_var, **TOL)
    # Under autocast a convolution hands BN a bfloat16 tensor; BN hands the same dtype on, as nn's does.
    conv = nn.Conv2d(3, 5, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = conv(torch.randn(2, 3, 8, 8))
        assert ours(features).dtype == ref(features).dtype == torch.bfloat16


def test_bad_input_messages():
    bn = BatchNorm2d(4)
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 4, H, W\), got \(2, 3, 5, 5\)"):
        bn(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn(torch.randn(1, 4, 1, 1))
