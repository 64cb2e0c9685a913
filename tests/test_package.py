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
