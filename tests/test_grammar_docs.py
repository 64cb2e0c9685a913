"""The docstring examples of the grammar modules run and give what they show."""

import doctest

import pytest

import rhmfast
import rhmfast.demo
import rhmfast.grammar
import rhmfast.strategies


@pytest.mark.parametrize("module", [rhmfast, rhmfast.grammar, rhmfast.strategies, rhmfast.demo])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_demo_command_prints_the_summary(capsys):
    from rhmfast.cli import main

    assert main(["demo", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "6,442,450,944 distinct strings" in out
    assert "clean samples             1.000   1.000   1.000   1.000" in out
    assert "all valid: True" in out
