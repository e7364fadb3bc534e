"""Residual Networks, Step by Step: the code behind the notebooks.

Modules, one job each: ``env`` (device, seeds, smoke mode), ``layers``
(BatchNorm and grouped convolution from scratch), ``models`` (ResNet, ResNeXt,
DenseNet, CIFAR nets), ``inspect`` (parameters, shapes, FLOPs), ``recorders``
(gradient and activation hooks), ``data``, ``train``, ``plots``, ``widgets``,
``checks`` (exercise checks) and ``results`` (measured histories of long
runs). ``import course_utils as cu`` gives them all.
"""

from . import checks, data, env, inspect, layers, models, plots, recorders, results, train, widgets

__version__ = "0.1.0"
__all__ = ["checks", "data", "env", "inspect", "layers", "models", "plots", "recorders", "results", "train", "widgets"]
