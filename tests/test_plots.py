"""course_utils.plots: every function returns a Figure with the expected axes and lines."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils import plots  # noqa: E402
from course_utils.models import cifar_resnet  # noqa: E402
from course_utils.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history(offset: float = 0.0, test: bool = True) -> History:
    h = History()
    for e in range(1, 4):
        record = {"epoch": e, "train_loss": 2.0 / e + offset, "train_acc": 0.3 * e}
        if test:
            record.update(test_loss=2.2 / e + offset, test_acc=0.25 * e)
        h.append(record)
    return h


def test_plot_history_one_and_several_runs():
    fig = plots.plot_history(history())
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)  # train dashed + test solid
    acc_train, acc_test = fig.axes[1].get_lines()
    assert acc_train.get_linestyle() == "--" and acc_test.get_linestyle() == "-"
    assert list(acc_test.get_ydata()) == pytest.approx([25, 50, 75])

    fig = plots.plot_history(
        {"plain": history(), "resnet": history(0.1), "no test": history(test=False)}, metrics=("acc",), error=True
    )
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 5
    assert list(ax.get_lines()[1].get_ydata()) == pytest.approx([75, 50, 25])  # error = 100 - acc
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["plain", "resnet"]


def test_plot_gradient_flow():
    norms = {"plain": {"a": 1.0, "b": 0.1, "c": 0.01}, "residual": {"a": 1.0, "b": 0.9, "c": 0.8, "d": 0.7}}
    fig = plots.plot_gradient_flow(norms)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 2 and ax.get_yscale() == "log"
    assert list(ax.get_lines()[1].get_xdata()) == [0, 1, 2, 3]
    single = plots.plot_gradient_flow({"a": 1.0, "b": 2.0}, log=False)
    assert len(single.axes[0].get_lines()) == 1 and single.axes[0].get_yscale() == "linear"


def test_show_images_marks_wrong_predictions():
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    fig = plots.show_images(
        images, labels=[0, 1, 2, 0, 1], preds=[0, 2, 2, 0, 0], classes=["a", "b", "c"], ncols=4, title="samples"
    )
    assert len(fig.axes) == 5
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["a", "c (b)"]
    assert fig.axes[1].title.get_color() == plots.WRONG and fig.axes[0].title.get_color() == plots.RIGHT
    normalized = torch.randn(3, 1, 8, 8)
    assert len(plots.show_images(normalized, mean=(0.5,), std=(0.2,)).axes) == 3
    with pytest.raises(ValueError, match="N, C, H, W"):
        plots.show_images(torch.zeros(3, 8, 8))


def test_show_feature_maps_one_row_per_stage():
    model = cifar_resnet(8)
    model.train()
    fig = plots.show_feature_maps(model, torch.randn(3, 32, 32), max_channels=4)
    assert len(fig.axes) == 4 * 4  # stem, layer1..3, four channels each
    assert fig.axes[0].get_title(loc="left") == "relu: 16 x 32 x 32"
    assert fig.axes[12].get_title(loc="left") == "layer3: 64 x 8 x 8"
    assert model.training and not model._forward_hooks
    assert all(not m._forward_hooks for m in model.modules())
    # A block's ReLU runs twice per forward pass; the map shown is its first output, relu(bn1(conv1(x))).
    image = torch.randn(3, 32, 32)
    fig = plots.show_feature_maps(model, image, layers=["layer1.0.relu"], max_channels=2)
    model.eval()
    with torch.no_grad():
        stem = model.relu(model.bn1(model.conv1(image[None])))
        block = model.layer1[0]
        first = torch.relu(block.bn1(block.conv1(stem)))[0, 1]
    torch.testing.assert_close(torch.as_tensor(fig.axes[1].get_images()[0].get_array()), first)


def test_plot_confusion_matrix():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 1, 1, 1, 2, 0])
    fig = plots.plot_confusion_matrix(labels, preds, ["a", "b", "c"])
    (ax,) = fig.axes
    matrix = ax.get_images()[0].get_array()
    assert matrix.shape == (3, 3) and matrix[0, 0] == pytest.approx(0.5) and matrix[1, 1] == pytest.approx(1.0)
    counts = plots.plot_confusion_matrix(labels, preds, ["a", "b", "c"], normalize=False)
    assert counts.axes[0].get_images()[0].get_array()[1, 1] == 2
