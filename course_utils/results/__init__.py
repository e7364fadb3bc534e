"""Histories of the course's long full-mode runs, shipped inside the package.

Notebook 07 trains four networks for the paper's figure 6, which takes a long
time; with these files a learner can draw the figure without retraining. They
live in the package, not in the repository's ``notebooks/`` folder, because on
Colab only ``course_utils`` is installed. Each experiment is a folder of
:class:`~course_utils.train.History` JSON files, one per run, whose ``meta``
says how, where and with which command it was measured.
"""

from __future__ import annotations

import json
from importlib import resources

from ..train import History

__all__ = ["shipped_history", "shipped_runs"]


def _folder(experiment: str):
    return resources.files(__name__) / experiment


def shipped_runs(experiment: str) -> list[str]:
    """The names of the runs shipped for ``experiment`` (e.g. ``"fig6"``), sorted; ``[]`` if none."""
    folder = _folder(experiment)
    if not folder.is_dir():
        return []
    return sorted(f.name[: -len(".json")] for f in folder.iterdir() if f.name.endswith(".json"))


def shipped_history(experiment: str, name: str) -> History | None:
    """The shipped history of run ``name`` (e.g. ``"ResNet-56"``) in ``experiment``, or ``None`` if none ships.

    File names are the lower-cased run names: ``fig6/resnet-56.json``.
    """
    resource = _folder(experiment) / f"{name.lower()}.json"
    if not resource.is_file():
        return None
    try:
        return History.from_dict(json.loads(resource.read_text(encoding="utf-8")))
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(
            f"The shipped history {experiment}/{resource.name} in course_utils is not a History JSON file ({err}). "
            "Reinstall course_utils, or train the run yourself."
        ) from err
