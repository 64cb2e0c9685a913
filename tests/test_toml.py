"""The one TOML writer (rhmfast._io.toml) against the reader (tomllib): what it writes
reads back to the same values, infinities and NaN included."""

import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rhmfast._io.toml import dump_toml, toml_value
from rhmfast.diffusion.config import tomllib  # tomli on Python 3.10

scalars = st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text()
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner), max_leaves=12
)
keys = st.text(max_size=8)
tables = st.dictionaries(keys, values, max_size=6)
documents = st.dictionaries(keys, values | tables, max_size=6)


def same(got, want):
    """Equal as TOML values: NaN equals NaN, -0.0 differs from 0.0, tuples read as lists."""
    if isinstance(want, float):
        if math.isnan(want):
            return isinstance(got, float) and math.isnan(got)
        return (
            type(got) is float and got == want and math.copysign(1, got) == math.copysign(1, want)
        )
    if isinstance(want, (list, tuple)):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(same(g, w) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(same(got[k], want[k]) for k in want)
        )
    return type(got) is type(want) and got == want


@given(documents)
def test_dump_toml_reads_back_with_tomllib(doc):
    text = dump_toml(doc)
    assert same(tomllib.loads(text), doc)
    assert same(tomllib.loads(dump_toml(doc, sort_keys=False)), doc)


@given(values)
def test_every_value_reads_back(value):
    assert same(tomllib.loads(f"x = {toml_value(value)}")["x"], value)


def test_infinities_and_nan_are_toml_floats():
    assert [toml_value(x) for x in (math.inf, -math.inf, math.nan)] == ["inf", "-inf", "nan"]
    got = tomllib.loads(dump_toml({"a": math.inf, "t": {"b": -math.inf, "c": math.nan}}))
    assert got["a"] == math.inf and got["t"]["b"] == -math.inf and math.isnan(got["t"]["c"])


def test_key_order_and_layout():
    text = dump_toml({"b": 1, "t": {"z": 1, "a": 2}, "a": "x"}, sort_keys=False)
    assert text == 'b = 1\na = "x"\n\n[t]\nz = 1\na = 2\n'
    assert dump_toml({"b": 1, "a": 2}) == "a = 2\nb = 1\n"
    assert dump_toml({"odd key": 1}) == '"odd key" = 1\n'


@pytest.mark.parametrize("bad", [None, object(), {1, 2}, b"bytes"])
def test_other_types_are_refused(bad):
    with pytest.raises(TypeError, match="cannot write a .* to TOML"):
        dump_toml({"x": bad})


def test_one_writer():
    from rhmfast.diffusion.config import TrainConfig
    from rhmfast.experiments import runner

    assert runner.dump_toml is dump_toml
    c = TrainConfig(run_dir='runs/"odd"\\dir\n', steps=7)
    assert c.to_toml() == dump_toml(c.to_dict(), sort_keys=False)
    assert TrainConfig.from_toml_string(c.to_toml()) == c


def test_run_data_files_need_no_torch():
    code = "import sys, rhmfast.trainset; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
