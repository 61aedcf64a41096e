"""Smoke test of the training-step benchmark (its numbers are not checked: benchmarks are run by hand)."""

from __future__ import annotations

import pytest

from benchmarks import bench_train  # the repository root is on sys.path under `python -m pytest`


def test_bench_train_times_a_tiny_step_and_renders_a_report(capsys: pytest.CaptureFixture[str]) -> None:
    bench_train.main(["--sizes", "tiny", "--presets", "masked", "--precisions", "fp32", "--batch", "1",
                      "--patch", "16", "--warm-up", "0", "--steps", "1", "--no-report", "--paired"])
    out = capsys.readouterr().out
    assert "tiny  masked   fp32:" in out and "matmul rate: fp32 " in out
    assert "tiny  paired   fp32:" in out and "s/step for both" in out
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


def test_attention_bound_leaves_out_only_the_core_and_puts_it_back() -> None:
    import torch

    from benchmarks import bench_bounds
    from model_core.network.attention import WindowAttention

    torch.manual_seed(0)
    attn = WindowAttention(12, 4, 2)
    windows = torch.randn(2, 3, 16, 12)
    with torch.no_grad():
        full = attn.infer(windows)
        with bench_bounds.attention_core_free():
            free = attn.infer(windows)
        again = attn.infer(windows)
        # Without the core every token's output is the projection of its own v.
        _, _, v = attn.split_heads(windows[None])
        v = v.permute(0, 1, 2, 4, 3, 5).reshape(2, 3, 16, 12)
        expected = attn.proj(v)
    assert free.shape == full.shape and not torch.allclose(free, full, atol=1e-3)
    torch.testing.assert_close(free, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, full, rtol=0, atol=0)
    row = bench_bounds.measure("lite", 16, 1)
    assert set(row["seconds"]) == {"as_is", "core_free"} and min(row["seconds"].values()) > 0
