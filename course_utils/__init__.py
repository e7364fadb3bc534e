"""Residual Networks, Step by Step: the code behind the notebooks.

Modules, one job each: ``env`` (device, seeds, smoke mode), ``layers``
(BatchNorm from scratch), ``models`` (ResNet, ResNeXt, DenseNet, CIFAR nets),
``inspect`` (parameters, shapes, FLOPs, hooks), ``data``, ``train``,
``plots``, ``widgets`` and ``checks`` (exercise checks).
"""

__version__ = "0.1.0"
