"""Measured false-positive rates and power, stored with the presets: a verdict quotes
them at exactly the settings they were measured at, and nothing otherwise."""

from __future__ import annotations

import json

import pytest

from rhmfast.experiments import rates
from rhmfast.experiments.presets import resolve_settings

pytest.importorskip("torch")

from rhmfast.experiments import pipeline, prototypes  # noqa: E402


def test_record_and_quote(tmp_path):
    path = tmp_path / "r.json"
    rates.record("prototypes", "k", "stat", "mixture", null=(3, 60), effect=(19, 20), strength="2x", path=path)
    rates.record("prototypes", "k", "stat", "onsets", null=(1, 20), path=path)
    rates.record("prototypes", "k", "stat", "mixture", null=(2, 60), path=path)  # replaces, keeps the effect
    stored = rates.load_rates(path)
    assert stored["prototypes"]["k"]["stat"]["mixture"] == {"null": [2, 60], "effect": [19, 20], "strength": "2x"}
    text = rates.quote("prototypes", "k", "stat", stored)
    assert "3% of 60 null sets (fixed-weight mixture), 5% of 20 null sets (per-string onsets)" in text
    assert "power: 95% of 20 effect sets (fixed-weight mixture, 2x)" in text
    assert rates.quote("prototypes", "other", "stat", stored) == ""
    assert rates.null_cell("prototypes", "other", "stat", stored) == "not measured"


def test_fingerprint_follows_every_setting():
    base = resolve_settings("prototypes", "quick", prototypes.DEFAULTS, None)
    assert rates.fingerprint(base) == rates.fingerprint(resolve_settings("prototypes", "quick", prototypes.DEFAULTS,
                                                                         None))
    changed = resolve_settings("prototypes", "quick", prototypes.DEFAULTS, {"train": {"steps": 2599}})
    assert rates.fingerprint(changed) != rates.fingerprint(base)


def test_a_verdict_quotes_the_rates_measured_at_its_settings(tmp_path, monkeypatch):
    settings = resolve_settings("prototypes", "micro", prototypes.DEFAULTS, None)
    path = tmp_path / "measured_rates.json"
    path.write_text(json.dumps({"prototypes": {rates.fingerprint(settings): {prototypes.STATISTICS[0]: {
        "mixture": {"null": [1, 40]}}}}}))
    monkeypatch.setattr(rates, "RATES_FILE", path)
    exp = pipeline.simulate("prototypes", pipeline.Memorizer(lam=[(0, 0.0), (64, 0.4)]), preset="micro",
                            out=tmp_path / "exp", progress=False)
    verdict = json.loads((exp / "results.json").read_text())["verdict"]
    if "not measurable" not in verdict:
        assert "false-positive rate measured on known answers at these settings: 2% of 40 null sets" in verdict
    table = (exp / "report.md").read_text().split("| statistic |", 1)[1]
    assert "2% of 40 (fixed-weight mixture)" in table  # the primary's row
    assert "not measured" in table  # the statistics never calibrated at these settings


def test_the_stored_rates_belong_to_the_current_presets():
    """Every stored entry was measured at a preset's current settings: a preset changed
    without a new calibration would leave its verdict quoting nothing, silently."""
    current = {rates.fingerprint(resolve_settings(name, preset, pipeline.EXPERIMENTS[name].DEFAULTS, None))
               for name in pipeline.EXPERIMENTS for preset in ("quick", "paper")}
    stored = {key for per_name in rates.load_rates().values() for key in per_name}
    assert stored <= current, stored - current
    for per_name in rates.load_rates().values():
        for per_stat in per_name.values():
            for per_family in per_stat.values():
                for v in per_family.values():
                    assert set(v) <= {"null", "effect", "strength"}
                    for k in ("null", "effect"):
                        if k in v:
                            assert 0 <= v[k][0] <= v[k][1] and v[k][1] > 0
