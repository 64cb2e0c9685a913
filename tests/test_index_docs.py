"""The docstring examples of the index, frequency and report modules run."""

import doctest

import pytest

import rhmfast.frequencies
import rhmfast.index
import rhmfast.metrics


@pytest.mark.parametrize("module", [rhmfast.index, rhmfast.frequencies, rhmfast.metrics])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
