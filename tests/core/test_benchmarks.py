"""Smoke test of the training-step benchmark (its numbers are not checked: benchmarks are run by hand)."""

from __future__ import annotations

import pytest

from benchmarks import bench_train  # the repository root is on sys.path under `python -m pytest`


def test_bench_train_times_a_tiny_step_and_renders_a_report(capsys: pytest.CaptureFixture[str]) -> None:
    bench_train.main(["--sizes", "tiny", "--presets", "masked", "--precisions", "fp32", "--batch", "1",
                      "--patch", "16", "--warm-up", "0", "--steps", "1", "--no-report"])
    out = capsys.readouterr().out
    assert "tiny  masked   fp32:" in out and "matmul rate: fp32 " in out
    row = {"device": "cpu", "size": "tiny", "preset": "masked", "precision": "fp32", "batch": 1,
           "patch": 16, "seconds": 0.5, "gflops": 1.0}
    ops = {"tiny, masked, fp32": [{"op": "aten::bmm", "share": 0.25, "calls": 3}]}
    info = {"cpu": "x", "physical_cores": 2, "logical_cpus": 2, "cpu_bf16": False, "torch": "t",
            "threads": 2, "cuda": None}
    report = bench_train.render([row], ops, info, "notes here", {"fp32": 4.0})
    assert "| cpu | tiny | masked | fp32 | 1 x 16 | 0.500 | 2.0 | 1.0 | 25% |" in report
    assert "fp32 4 GFLOP/s" in report
    assert "| `aten::bmm` | 25% | 3 |" in report and report.rstrip().endswith("notes here")


def test_app_rows_of_another_run_are_kept_unless_measured_again() -> None:
    from benchmarks import bench_inference

    def row(network: str, side: int, passes: int, done: float) -> dict[str, object]:
        return {"network": network, "height": side, "width": side, "passes": passes, "done_s": done}

    old = [row("lite", 4000, 8, 900.0), row("lite", 512, 1, 2.2)]
    new = [row("paper", 512, 1, 4.1), row("lite", 512, 1, 2.0)]
    merged = bench_inference.merge_app_rows(old, new)
    assert [(r["network"], r["width"], r["passes"], r["done_s"]) for r in merged] == [
        ("lite", 512, 1, 2.0), ("paper", 512, 1, 4.1), ("lite", 4000, 8, 900.0)]
