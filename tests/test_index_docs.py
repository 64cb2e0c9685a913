"""The docstring examples of the index, frequency and report modules run."""

import doctest

import pytest

import rhmfast.frequencies
import rhmfast.index
import rhmfast.report


@pytest.mark.parametrize("module", [rhmfast.index, rhmfast.frequencies, rhmfast.report])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
