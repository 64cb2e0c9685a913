"""The docstring examples of the grammar modules run and give what they show."""

import doctest

import pytest

import rhmfast
import rhmfast.grammar
import rhmfast.strategies


@pytest.mark.parametrize("module", [rhmfast, rhmfast.grammar, rhmfast.strategies])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
