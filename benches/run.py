"""Run every benchmark (``benches/bench_*.py``) and print ratios against the peers.

``python benches/run.py``           full run (figures for docs/RESULTS.md and the README)
``python benches/run.py --smoke``   tiny sizes, checks the benches still run (CI)
``python benches/run.py grammar``   only benches whose name contains "grammar"
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("only", nargs="*", help="substrings of bench names to run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
    args = parser.parse_args()
    here = pathlib.Path(__file__).parent
    for path in sorted(here.glob("bench_*.py")):
        if args.only and not any(o in path.stem for o in args.only):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"\n## {path.stem}{' (smoke)' if args.smoke else ''}", flush=True)
        module.main(smoke=args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
