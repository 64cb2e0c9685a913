"""Every docstring example of the package runs and gives what it shows (the check
``python -m pytest --doctest-modules python/rhmfast`` makes on a development install,
with the same flags as pyproject.toml's ``doctest_optionflags``, on the installed
package)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import rhmfast

MODULES = sorted(m.name for m in pkgutil.walk_packages(rhmfast.__path__, "rhmfast.")
                 if not m.name.endswith("__main__"))
# modules without an example of their own: the native extension (its stub is checked by
# mypy.stubtest) and the command line (tested through its commands)
NO_EXAMPLE = {"rhmfast._rhmfast", "rhmfast.cli"}


def test_every_module_is_listed():
    assert {"rhmfast.stats.chance", "rhmfast.knownanswers.counts", "rhmfast.analysis.excess"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name not in NO_EXAMPLE:
        assert result.attempted > 0, f"{name} has no docstring example"
