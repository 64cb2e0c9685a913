"""File input and output in one place (numpy only, no torch):

- :mod:`rhmfast._io.untrusted`: the one reader of user-supplied files (``.npy``,
  ``.npz``, JSON, JSON lines, text rows), every size checked before it is allocated;
- :mod:`rhmfast._io.atomic`: atomic writes (temporary file, fsync, rename);
- :mod:`rhmfast._io.jsonfile`: JSON-ready values and atomic JSON files (``results.json``);
- :mod:`rhmfast._io.toml`: the TOML writer and the bounded TOML reader.

Import the submodules themselves; this package imports nothing.

>>> from rhmfast._io import untrusted
>>> untrusted.read_json(b'{"tokens": [1, 2]}', max_bytes=100, max_depth=2)
{'tokens': [1, 2]}
"""
