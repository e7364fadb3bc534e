"""Residual Networks, Step by Step: the code behind the notebooks.

One job per module: ``env`` (device, size, seeds), ``layers`` (BatchNorm and
grouped convolution from scratch), ``models`` (ResNet, ResNeXt, DenseNet, CIFAR
nets), ``inspect`` (parameters, shapes, FLOPs), ``recorders`` (gradient and
activation hooks), ``data``, ``train`` (``fit`` and its callbacks), ``report``
(``verdict``), ``plots``, ``widgets`` and ``checks`` (the exercises).
``import course_utils as cu`` gives them all.
"""

from . import checks, data, env, inspect, layers, models, plots, recorders, report, train, widgets  # noqa: F401
from .report import verdict  # noqa: F401

__version__ = "0.2.0"
