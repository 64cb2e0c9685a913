"""The README's Python examples run, and print what the README says they print.

Every ```python block of README.md is executed in order in one namespace, in a
temporary working directory (the examples write files such as ``rhm/``). A block that
imports torch is skipped, alone, when torch is missing; the blocks after it must not
need it. ``# -> TEXT`` comments in a block are its expected output, one per printed
line and in order; a TEXT that ends in ``...`` need only be a prefix of its line. A
block without such comments is only run.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
QUICK_START = (
    "pip install '.[train,plot]' && rhmfast experiment prototypes",
    "pip install '.[dev]' && python -m pytest -q",
)
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_EXPECT = re.compile(r"#\s*->\s?(.*)$")


def _blocks() -> list[tuple[int, str]]:
    """(first line of the code, 1-based; code) of every ```python block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _FENCE.finditer(text)]


BLOCKS = _blocks()


def _needs_torch(code: str) -> bool:
    return re.search(r"^\s*(import torch|from torch[\s.])", code, re.M) is not None


def _expected(code: str) -> list[str]:
    return [m.group(1).rstrip() for line in code.splitlines() if (m := _EXPECT.search(line))]


def _run(i: int, ns: dict[str, object]) -> None:
    line, code = BLOCKS[i]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md, python block {i + 1} (line {line})", "exec"), ns)
    want = _expected(code)
    if not want:
        return
    got = [g.rstrip() for g in out.getvalue().splitlines()]
    assert len(got) == len(want), f"block at line {line} printed {got!r}, README says {want!r}"
    for g, w in zip(got, want):
        ok = g.startswith(w[:-3]) if w.endswith("...") else g == w
        assert ok, f"block at line {line} printed {g!r}, README says {w!r}"


@pytest.fixture(scope="module")
def readme_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One namespace for all blocks, the blocks run so far, and their working directory."""
    return {"ns": {"__name__": "__readme__"}, "done": set(), "cwd": tmp_path_factory.mktemp("readme")}


def test_readme_has_python_examples() -> None:
    assert BLOCKS, "README.md has no ```python block"


@pytest.mark.parametrize("i", range(len(BLOCKS)), ids=[f"line{line}" for line, _ in BLOCKS])
def test_readme_example(i: int, readme_env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    if _needs_torch(BLOCKS[i][1]):
        pytest.importorskip("torch")
    monkeypatch.chdir(readme_env["cwd"])
    done: set[int] = readme_env["done"]
    # the blocks before this one first, in order, if they have not run in this process
    for j in range(i + 1):
        if j in done or (j < i and _needs_torch(BLOCKS[j][1]) and not _has_torch()):
            continue
        _run(j, readme_env["ns"])
        done.add(j)


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def test_first_python_example_is_near_the_top() -> None:
    assert BLOCKS and BLOCKS[0][0] - 1 < 80, "the first ```python block must start before line 80"


def test_quick_start_commands_verbatim() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    for command in QUICK_START:
        assert any(line.startswith(command) for line in lines), f"quick start lost {command!r}"
