"""Collection: the trainer's tests need torch (the ``train`` extra); without it they are
skipped, and the grammar, index and analysis tests still run on numpy alone."""

import importlib.util

_TORCH_TESTS = ["test_diffusion_models.py", "test_diffusion_processes.py", "test_diffusion_train.py"]

collect_ignore = [] if importlib.util.find_spec("torch") else _TORCH_TESTS
