# Type stubs for the private native module, checked by `python -m mypy.stubtest rhmfast._rhmfast`.
__version__: str

# --- grammar ---

# --- index ---

# --- counting ---
