"""Residual Networks, Step by Step: the code behind the notebooks. One job per module: ``env``, ``layers``, ``models``,
``inspect``, ``recorders``, ``data``, ``train`` (``fit`` and its callbacks), ``report`` (``verdict``), ``plots``,
``widgets``, ``checks``. ``import course_utils as cu`` gives all."""

from . import checks, data, env, inspect, layers, models, plots, recorders, report, train, widgets  # noqa: F401
from .report import verdict  # noqa: F401

__version__ = "0.2.0"
