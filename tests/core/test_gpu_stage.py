"""The arithmetic of configs/gpu_stage.py, the driver of a campaign stage on a lent GPU (its runs
need a GPU lease; docs/TRAINING.md, "On a lent GPU")."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def load_stage() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "configs" / "gpu_stage.py"
    spec = importlib.util.spec_from_file_location("gpu_stage", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rate_leaves_out_the_first_row_and_the_length_fits_the_seconds_left() -> None:
    stage = load_stage()
    rows = [(50, 13.7), (100, 26.4), (150, 39.0), (200, 51.8)]
    assert stage.seconds_per_iteration(rows) == pytest.approx((51.8 - 26.4) / 100)
    assert stage.seconds_per_iteration(rows[:2]) is None  # the first row holds the start-up
    assert stage.plan(200, 0.25, 350, 8) == (1600, 200)
    assert stage.plan(200, 10.0, 5, 8) == (300, 100)  # never shorter than what is done


def test_a_row_still_being_written_is_not_read(tmp_path: Path) -> None:
    stage = load_stage()
    run = tmp_path / "g9-masked"
    run.mkdir()
    (run / "log.csv").write_text("iteration,elapsed_s,loss\n50,13.7,0.1\n100,26.4,0.1\n15")
    args = stage.parse_args(["--name", "g9", "--runs", str(tmp_path), "--out", str(tmp_path / "out")])
    assert stage.log_rows(args, "masked") == [(50, 13.7), (100, 26.4)]
    assert stage.log_rows(args, "baseline") == []  # no log yet
