"""The probe of the paired step's variants: it times, checks soundness, picks and reports."""

from __future__ import annotations

import json

import pytest
import torch

from model_core.train import probe
from model_core.train.config import TrainConfig
from model_core.train.resident import load_resident

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_cfg(**changes) -> TrainConfig:
    base = dict(model_size="tiny", patch=16, batch=2, iterations=100, precision="fp32", seed=1)
    return TrainConfig.preset_config("masked", "cpu", **{**base, **changes})


def test_the_probe_keeps_only_sound_variants_and_picks_the_fastest(data_dir, monkeypatch):
    def wrong(model, mode=None):  # a "compiled" step whose numbers are off
        return lambda *args, **kwargs: model(*args, **kwargs) * 1.5

    monkeypatch.setattr(torch, "compile", wrong)
    images = load_resident(data_dir, 16, CPU)
    report = probe.run_probe(images, tiny_cfg(), variants=("eager", "compile+cudagraphs"),
                             batches=(2, 4), steps=1, warmup=1)
    rows = {(r.variant, r.batch): r for r in report.rows}
    assert len(rows) == 4
    assert all(rows["eager", b].sound and rows["eager", b].losses == rows["eager", b].eager_losses
               for b in (2, 4))
    cuda_graphs = rows["compile+cudagraphs", 4]  # falls back to compile, whose numbers are off
    assert cuda_graphs.ran == "compile" and "CUDA graphs need a CUDA device" in cuda_graphs.note
    assert not cuda_graphs.sound and "differ from the eager" in cuda_graphs.note
    assert report.pick is not None and report.pick.variant == "eager"
    assert report.pick.patches_per_s == max(rows["eager", b].patches_per_s for b in (2, 4))
    assert probe.pick(report.rows, max_batch=2).batch == 2
    for r in (rows["eager", 2], rows["eager", 4]):
        assert r.patches_per_s > 0 and r.tflops > 0 and 0 < r.matmul_share
        assert r.tflops * 1e12 == pytest.approx(2 * r.patches_per_s * report.flops_per_patch)
    table = probe.render(report)
    assert "patches/s" in table and "pick: eager, batch" in table and "compile+cudagraphs->compile" in table
    assert table.count(" NO ") == 2


def test_the_probe_skips_rows_past_its_budget(data_dir):
    times = iter(range(0, 1000, 10))
    report = probe.run_probe(load_resident(data_dir, 16, CPU), tiny_cfg(), variants=("eager",),
                             batches=(2, 3, 4), steps=1, warmup=1, budget=25, clock=lambda: next(times))
    assert [r.note.startswith("skipped") for r in report.rows] == [False, False, True]


def test_the_probe_command_writes_its_report_and_profiles_the_pick(data_dir, tmp_path, capsys):
    out = tmp_path / "probe.json"
    code = probe.main(["--data", str(data_dir), "--size", "tiny", "--patch", "16", "--device", "cpu",
                       "--precision", "fp32", "--variants", "eager", "--batches", "2", "--steps", "2",
                       "--warmup", "1", "--json", str(out), "--profile", "--sdpa", "both"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads(out.read_text())
    assert [r["sdpa"] for r in report["rows"]] == [False, True]
    assert report["pick"]["batch"] == 2 and report["flops_per_patch"] > 0 and report["matmul_tflops"] > 0
    assert "pick: eager" in printed and "Self CPU" in printed  # the profiler's table


def test_training_flops_are_three_forward_passes():
    from model_core.network import SwinIRConfig
    from model_core.network.flops import forward_flops, training_flops

    lite = SwinIRConfig.lite()
    assert 3.6e9 < forward_flops(lite, 64, 64) < 3.7e9  # docs/TRAINING.md: 3.7 GFLOP per patch
    assert training_flops(lite, 64) == 3 * forward_flops(lite, 64, 64)
