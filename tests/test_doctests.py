"""The examples in memloc's docstrings run and print what they show (lightly's style: every
main entry point ends its docstring with a runnable example)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import pytest

import memloc
from memloc.activations import resolve_layers
from memloc.artifacts import encoder_pair
from memloc.augment import AugmentPolicy
from memloc.interventions import prune_units
from memloc.metrics import classmem, layermem, unitmem
from memloc.probe import linear_probe
from memloc.train import train

ENTRY_POINTS = [
    layermem,
    unitmem,
    classmem,
    encoder_pair,
    AugmentPolicy,
    resolve_layers,
    train,
    linear_probe,
    prune_units,
]
MODULES = sorted(m.name for m in pkgutil.walk_packages(memloc.__path__, "memloc."))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.__name__)
def test_every_main_entry_point_has_an_example(entry):
    (test,) = doctest.DocTestFinder(recurse=False).find(entry, entry.__name__)
    assert len(test.examples) >= 2, f"{entry.__name__}'s docstring has no runnable example"


def _module_tests():
    for name in MODULES:
        module = importlib.import_module(name)
        for test in doctest.DocTestFinder().find(module):
            if test.examples:
                yield test


@pytest.mark.parametrize("test", list(_module_tests()), ids=lambda t: t.name)
def test_docstring_examples_run(test):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. undefined UnitMem units of random encoders
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
