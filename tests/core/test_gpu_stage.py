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


@pytest.mark.parametrize("path, folder", [("two-runs", "g9-masked"), ("paired", "g9/masked")])
def test_a_row_still_being_written_is_not_read(tmp_path: Path, path: str, folder: str) -> None:
    stage = load_stage()
    run = tmp_path / folder
    run.mkdir(parents=True)
    (run / "log.csv").write_text("iteration,elapsed_s,loss\n50,13.7,0.1\n100,26.4,0.1\n15")
    args = stage.parse_args(["--name", "g9", "--runs", str(tmp_path), "--out", str(tmp_path / "out"),
                             "--path", path])
    assert stage.log_rows(args, "masked") == [(50, 13.7), (100, 26.4)]
    assert stage.log_rows(args, "baseline") == []  # no log yet


def test_the_paired_path_is_the_default_and_packs_as_two_runs_did(tmp_path: Path) -> None:
    import tarfile

    stage = load_stage()
    args = stage.parse_args(["--name", "g9", "--runs", str(tmp_path), "--out", str(tmp_path / "out")])
    assert args.path == "paired" and args.max_batch == 64
    for preset in ("masked", "baseline"):
        (tmp_path / "g9" / preset).mkdir(parents=True)
        (tmp_path / "g9" / preset / "log.csv").write_text("iteration\n")
    (tmp_path / "g9-paired.log").write_text("driver\n")
    (tmp_path / "g9-probe.json").write_text("{}")
    stage.pack(args)
    with tarfile.open(tmp_path / "out" / "g9-masked.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["g9-masked", "g9-masked/log.csv", "g9-paired.log"]
    assert (tmp_path / "out" / "g9-probe.json").is_file()


def test_the_probe_pick_becomes_the_paired_runs_options(tmp_path: Path) -> None:
    stage = load_stage()
    report = tmp_path / "probe.json"
    assert stage.probe_pick(report) is None  # no file: the eager step at the stage's batch
    assert stage.paired_options(None, 64) == ["--variant", "eager", "--batch", "64"]
    report.write_text('{"rows": [], "pick": null}')
    assert stage.probe_pick(report) is None
    report.write_text('{"pick": {"variant": "compile+cudagraphs", "ran": "compile", "sdpa": true, '
                      '"batch": 64, "patches_per_s": 5000.0}}')
    pick = stage.probe_pick(report)
    assert stage.paired_options(pick, 32) == ["--variant", "compile", "--batch", "64", "--sdpa"]
