"""The demo command (the docstring examples run in tests/test_docstrings.py)."""


def test_demo_command_prints_the_summary(capsys):
    from rhmfast.cli import main

    assert main(["demo", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "6,442,450,944 distinct strings" in out
    assert "clean samples             1.000   1.000   1.000   1.000" in out
    assert "all valid: True" in out
