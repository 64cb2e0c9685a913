import subprocess
import sys

import rhmfast


def test_version_matches_native_module():
    from rhmfast import _rhmfast

    assert rhmfast.__version__ == _rhmfast.__version__
    assert rhmfast.__version__.count(".") == 2


def test_import_does_not_pull_torch_or_matplotlib():
    code = "import sys, rhmfast; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_atomic_writes_leave_no_temporary_file(tmp_path):
    from rhmfast._io import atomic

    target = tmp_path / "a" / "b.toml"
    atomic.atomic_write_text(target, "x = 1\n")
    atomic.atomic_write_text(target, "x = 2\n")  # replaces, never appends
    assert target.read_text() == "x = 2\n" and [p.name for p in target.parent.iterdir()] == ["b.toml"]
