"""The recipe-search knobs of ``mdn train`` (issue 14): a dense share that decays, an input-mask
curriculum, the small model size, and the harness that starts two arms."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from model_core import cli as mdn_cli
from model_core.network import apply_input_mask
from model_core.network.checkpoint import load_weights
from model_core.network.config import SwinIRConfig
from model_core.network.masks import INPUT_MASK_FILL
from model_core.train.cli import build_parser, config_from_args
from model_core.train.cli import main as train_main
from model_core.train.config import TrainConfig
from model_core.train.loop import make_inputs, new_state, train_step
from model_core.weights import training_summary

ROOT = Path(__file__).resolve().parents[2]
NEW_FIELDS = ("dense_final", "mask_ramp", "mask_ramp_start")


def tiny_cfg(**changes) -> TrainConfig:
    base = dict(model_size="tiny", patch=16, batch=8, iterations=100, workers=0, precision="fp32",
                sigma=1.0)
    return TrainConfig.preset_config("masked", **{**base, **changes})


def _inputs_before_the_knobs(clean: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """``make_inputs`` as it was before the knobs (commit b445070), to pin the defaults to it."""
    noise = torch.randn(clean.shape, generator=gen) * (cfg.sigma / 255)
    noisy = (clean + noise).clamp_(0, 1)
    if cfg.input_mask is None:
        return noisy
    b = clean.shape[0]
    low, high = (round(v * 100) for v in cfg.input_mask)
    ratios = torch.randint(low, high + 1, (b,), generator=gen).float() / 100
    if cfg.dense_share:
        jitter = float(torch.rand((), generator=gen))
        dense = min(b, int(cfg.dense_share * b + jitter))
        ratios[:dense] = 0
    masked, _ = apply_input_mask(noisy, ratios, gen)
    return masked


def _drop_ratios(inputs: torch.Tensor) -> torch.Tensor:
    """Measured input-mask drop ratio of each patch (B,)."""
    return (inputs == INPUT_MASK_FILL).all(dim=1).float().mean(dim=(1, 2))


@pytest.mark.parametrize("cfg", [
    tiny_cfg(), tiny_cfg(dense_share=0.25), TrainConfig.preset_config("masked", "cpu", model_size="tiny"),
    TrainConfig.preset_config("baseline", "cpu", model_size="tiny"),
    tiny_cfg(dense_share=0.25, dense_final=0.25), tiny_cfg(mask_ramp_start=0.3)])
def test_knobs_at_their_defaults_give_the_inputs_of_before(cfg):
    """Default knobs, or a dense share that ends where it starts, draw exactly what mdn drew
    before the knobs, at any iteration."""
    clean = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    for iteration in (0, 37, 99, 10_000):
        for seed in range(3):
            ours = make_inputs(clean, cfg, torch.Generator().manual_seed(seed), iteration)
            before = _inputs_before_the_knobs(clean, cfg, torch.Generator().manual_seed(seed))
            torch.testing.assert_close(ours, before, rtol=0, atol=0)


def test_the_dense_share_moves_from_dense_share_to_dense_final():
    cfg = tiny_cfg(dense_share=0.5, dense_final=0.0, iterations=101)
    clean = torch.full((8, 3, 16, 16), 0.3)

    def dense_count(iteration: int, seed: int) -> int:
        inputs = make_inputs(clean, cfg, torch.Generator().manual_seed(seed), iteration)
        return int((_drop_ratios(inputs) == 0).sum())

    # 0.5, 0.25 and 0 of 8 patches are whole numbers: stochastic rounding leaves them exact
    assert [dense_count(0, s) for s in range(5)] == [4] * 5
    assert [dense_count(50, s) for s in range(5)] == [2] * 5
    assert [dense_count(100, s) for s in range(5)] == [0] * 5
    assert cfg.dense_share_at(0) == 0.5 and cfg.dense_share_at(100) == 0.0
    rising = tiny_cfg(dense_share=0.0, dense_final=0.5, iterations=101)
    assert [rising.dense_share_at(i) for i in (0, 50, 100, 500)] == [0.0, 0.25, 0.5, 0.5]
    assert tiny_cfg(dense_share=0.3).dense_share_at(99) == 0.3  # no dense_final: constant


def test_the_input_mask_ramps_up_from_its_start_to_the_papers_ratios():
    cfg = tiny_cfg(mask_ramp=0.5, mask_ramp_start=0.5, iterations=100, patch=32)
    clean = torch.full((8, 3, 32, 32), 0.3)

    def ratios(iteration: int) -> torch.Tensor:
        return _drop_ratios(make_inputs(clean, cfg, torch.Generator().manual_seed(iteration), iteration))

    assert float((ratios(0) - 0.5).abs().max()) < 0.08  # every masked patch drops the start's 50 %
    middle = ratios(25)  # half-way: 0.5 + (0.8..0.9 - 0.5) / 2 = 0.65..0.7
    assert 0.58 < float(middle.min()) and float(middle.max()) < 0.77
    for iteration in (50, 99):  # from the end of the ramp on: the paper's 80-90 %
        assert float(ratios(iteration).min()) > 0.72
    assert [cfg.mask_ramp_at(i) for i in (0, 25, 50, 99)] == [0.0, 0.5, 1.0, 1.0]
    assert tiny_cfg().mask_ramp_at(0) == 1.0
    # with a dense share, the dense patches stay dense during the ramp
    dense = tiny_cfg(mask_ramp=0.5, dense_share=0.25)
    inputs = make_inputs(clean[:, :, :16, :16], dense, torch.Generator().manual_seed(0), 0)
    assert int((_drop_ratios(inputs) == 0).sum()) == 2


class _Recorder(torch.nn.Module):
    """The model, recording what each forward is given."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        self.calls.append((float(_drop_ratios(x).mean()), kwargs["attn_mask_ratio"]))
        return self.model(x, **kwargs)


def test_train_step_draws_the_inputs_of_the_states_iteration():
    cfg = tiny_cfg(mask_ramp=0.5, mask_ramp_start=0.1, iterations=100, batch=2, patch=32)
    state = new_state(cfg, torch.device("cpu"))
    net = _Recorder(state.model)
    clean = torch.full((2, 3, 32, 32), 0.3)
    for iteration in (0, 60):
        state.iteration = iteration
        train_step(state, net, clean, cfg, torch.Generator().manual_seed(0), "fp32")
    (early, attn_early), (late, attn_late) = net.calls
    assert abs(early - 0.1) < 0.08 and late > 0.75
    assert attn_early == attn_late == 0.75  # the attention mask is the paper's throughout


def test_invalid_knobs_are_refused():
    for changes, words in [({"dense_final": 1.5}, "dense_final"), ({"dense_final": -0.1}, "dense_final"),
                           ({"mask_ramp": 2.0}, "mask_ramp"), ({"mask_ramp": -1.0}, "mask_ramp"),
                           ({"mask_ramp_start": 1.0}, "mask_ramp_start")]:
        with pytest.raises(ValueError, match=words):
            tiny_cfg(**changes)
    for changes in ({"dense_final": 0.0}, {"mask_ramp": 0.3}):
        with pytest.raises(ValueError, match="input mask"):
            TrainConfig.preset_config("baseline", model_size="tiny", **changes)


def test_departures_name_each_knob_and_leave_the_cpu_recipe_as_it_was():
    cpu = TrainConfig.preset_config("masked", "cpu", model_size="lite")
    assert cpu.departures(fine_tuned=True) == [  # as before the knobs
        "25% of the patches are left dense (no input mask); the others get the paper's input mask",
        "fine-tuned from trained weights (--init) instead of trained from scratch",
        "learning rate 2e-4 with a 100-iteration warm-up and a cosine fall to 0 over the last quarter of "
        "the stage (the paper: 1e-4, halved at 150k-400k of 450k iterations)",
        "EMA decay 0.995 (the paper: 0.999)",
        "batch 8 of 64x64 crops (the paper: batch 64 of 64x64 crops of DIV2K+Flickr2K+BSD500+WED)"]
    knobs = dataclasses.replace(cpu, dense_final=0.0, mask_ramp=0.3, model_size="small")
    lines = knobs.departures(fine_tuned=True)
    text = "\n".join(lines)
    assert "the dense share (patches left without input mask; the others get the paper's input mask) " \
           "falls from 25% to 0% over the stage" in text
    assert "input-mask curriculum: 50% moving to the paper's 80-90% over the first 30% of the stage" in text
    assert "small model: embed 48, 4 groups of 2 blocks (the paper: embed 60, 4 groups of 6)" in text
    assert "left dense (no input mask)" not in text  # the decaying share replaces the constant one
    scratch = cpu.departures(fine_tuned=False)
    assert not any("fine-tuned" in line for line in scratch)
    assert len(scratch) == len(cpu.departures(fine_tuned=True)) - 1
    rising = dataclasses.replace(cpu, dense_share=0.0, dense_final=0.5).departures(fine_tuned=True)
    assert any("rises from 0% to 50%" in line for line in rising)
    paper = TrainConfig.preset_config("masked", model_size="small")
    assert paper.departures(fine_tuned=True) == []  # the paper's


def test_configs_without_the_new_fields_still_load():
    """Checkpoints and model cards written before the knobs lack their fields."""
    old = TrainConfig.preset_config("masked", "cpu", model_size="lite").to_dict()
    for name in NEW_FIELDS:
        old.pop(name)
    loaded = TrainConfig.from_dict(old)
    assert (loaded.dense_final, loaded.mask_ramp, loaded.mask_ramp_start) == (None, 0.0, 0.5)
    assert loaded == TrainConfig.preset_config("masked", "cpu", model_size="lite")


def test_the_cli_parses_the_knobs():
    args = build_parser().parse_args([
        "--preset", "masked", "--recipe", "cpu", "--out", "x", "--size", "small", "--dense-final", "0",
        "--mask-ramp", "0.3", "--mask-ramp-start", "0.4"])
    cfg = config_from_args(args)
    assert (cfg.model_size, cfg.dense_share, cfg.dense_final) == ("small", 0.25, 0.0)
    assert (cfg.mask_ramp, cfg.mask_ramp_start) == (0.3, 0.4)
    assert cfg.model_config() == SwinIRConfig.small()
    default = config_from_args(build_parser().parse_args(["--preset", "masked", "--out", "x"]))
    assert default == TrainConfig.preset_config("masked")


def test_resume_refuses_a_changed_knob():
    saved = TrainConfig.preset_config("masked", "cpu", model_size="tiny", mask_ramp=0.3)
    parser = build_parser()
    base = ["--preset", "masked", "--out", "run", "--resume"]
    assert config_from_args(parser.parse_args(base), saved) == saved  # left out: the run's
    assert config_from_args(parser.parse_args([*base, "--mask-ramp", "0.3"]), saved) == saved
    for extra, words in [(["--mask-ramp", "0.2"], "--mask-ramp 0.3"),
                         (["--mask-ramp-start", "0.6"], "--mask-ramp-start 0.5"),
                         (["--dense-final", "0"], "no --dense-final")]:
        with pytest.raises(ValueError, match=words):
            config_from_args(parser.parse_args([*base, *extra]), saved)


def _common(data_dir: Path, size: str = "tiny") -> list[str]:
    return ["--preset", "masked", "--recipe", "cpu", "--size", size, "--data", str(data_dir), "--val",
            "none", "--batch", "1", "--patch", "16", "--workers", "0", "--precision", "fp32",
            "--no-progress"]


def test_a_checkpoint_without_the_new_fields_still_resumes(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main([*_common(data_dir), "--out", str(run), "--iterations", "1"]) == 0
    payload = torch.load(run / "last.ckpt", weights_only=True)
    old = json.loads(payload["train_config"])
    for name in NEW_FIELDS:
        old.pop(name)
    payload["train_config"] = json.dumps(old)  # as written before the knobs
    assert json.loads(payload.pop("init")) is None  # from scratch; older checkpoints lack the field
    torch.save(payload, run / "last.ckpt")
    assert train_main([*_common(data_dir), "--out", str(run), "--resume", "--iterations", "2"]) == 0
    card = load_weights(run / "model.safetensors").card
    assert card["iterations"] == 2
    # where the start was not recorded, the card names none and keeps the cpu recipe's old wording
    assert "init" not in card and any("fine-tuned" in line for line in card["departures"])
    capsys.readouterr()
    assert train_main([*_common(data_dir), "--out", str(run), "--resume", "--iterations", "3",
                       "--mask-ramp", "0.5"]) == 1
    assert "mask-ramp" in capsys.readouterr().err


def test_the_small_size_trains_and_its_weights_say_so(data_dir, tmp_path, capsys):
    run = tmp_path / "small"
    assert train_main([*_common(data_dir, "small"), "--out", str(run), "--iterations", "1",
                       "--init", "none"]) == 0
    loaded = load_weights(run / "model.safetensors")
    assert loaded.config == dataclasses.replace(SwinIRConfig.small(), img_size=loaded.config.img_size)
    assert any(line.startswith("small model: embed 48") for line in loaded.card["departures"])
    # trained from scratch: neither the card nor its departures claim a fine-tuning
    assert "init" not in loaded.card
    assert not any("fine-tuned" in line for line in loaded.card["departures"])
    assert training_summary(loaded.card).startswith("small size, trained 1 iterations")
    capsys.readouterr()
    assert mdn_cli.main(["info", str(run / "model.safetensors")]) == 0
    assert "training: small size" in capsys.readouterr().out
    # weights of the small size do not warm-start another size, and the error names both
    assert train_main([*_common(data_dir, "tiny"), "--out", str(tmp_path / "x"), "--iterations", "1",
                       "--init", str(run / "model.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "the small size" in err and "the tiny size" in err


def test_bench_train_times_the_small_size():
    from benchmarks import bench_train  # the repository root is on sys.path under `python -m pytest`

    args = bench_train._parser().parse_args(["--sizes", "small", "lite", "--presets", "masked"])
    assert args.sizes == ["small", "lite"]


@pytest.mark.skipif(shutil.which("bash") is None or os.name != "posix", reason="a bash script")
def test_recipe_search_starts_two_arms_whose_flags_win(tmp_path):
    """The harness, with MDN a fake mdn that records its arguments: the arm's own --iterations,
    --size and --init override the common ones (the arguments go through mdn train's parser)."""
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "recipe_search.sh", tmp_path / "configs")
    fake = tmp_path / "fake_mdn"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\necho END\n')
    fake.chmod(0o755)
    env = {**os.environ, "MDN": str(fake), "MDN_SEED": "77", "MDN_NICE": "10"}
    script = str(tmp_path / "configs" / "recipe_search.sh")
    arm_a = "--lr 5e-4 --size small --init none --iterations 1800"
    done = subprocess.run(["bash", script, "s9", "900", arm_a, ""], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "started a (seed 77)" in done.stdout and "log runs/s9-b.log" in done.stdout
    logs = [tmp_path / "runs" / f"s9-{arm}.log" for arm in "ab"]
    deadline = time.monotonic() + 30
    while not all(p.exists() and p.read_text().endswith("END\n") for p in logs):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    configs = []
    for log in logs:
        argv = log.read_text().splitlines()[:-1]
        assert argv[0] == "train"
        args = build_parser().parse_args(argv[1:])
        assert args.threads == 1 and not args.resume
        configs.append((config_from_args(args), args.init, args.out))
    (a, init_a, out_a), (b, init_b, out_b) = configs
    assert (a.iterations, a.model_size, a.lr, init_a) == (1800, "small", 5e-4, "none")
    assert (b.iterations, b.model_size, b.lr, init_b) == (900, "lite", 2e-4, "masked")
    assert (out_a, out_b) == (Path("runs/s9-a"), Path("runs/s9-b"))
    for cfg in (a, b):
        assert (cfg.recipe, cfg.seed, cfg.val_every, cfg.val_limit) == ("cpu", 77, 250, 4)
        assert cfg.checkpoint_every == 100
        assert (cfg.workers, cfg.precision, cfg.preset) == (0, "auto", "masked")
    usage = subprocess.run(["bash", script, "s9", "900", "only one"], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
