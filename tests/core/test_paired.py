"""The paired path: both models in one process, data resident on the device, exact resume,
identical patches, step-variant fallbacks, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from model_core.network.masks import draw_keep_maps
from model_core.train import paired as paired_module
from model_core.train.cli import main as train_main
from model_core.train.config import TrainConfig
from model_core.train.loop import new_state, step_generator, train_step
from model_core.train.paired import PairedTrainer, baseline_config, new_paired_state
from model_core.train.paired_run import PairedPaths, StepOptions, fit_paired
from model_core.train.resident import ResidentBatch, masked_input

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_cfg(**changes) -> TrainConfig:
    base = dict(model_size="tiny", patch=16, batch=3, iterations=4, checkpoint_every=2, val_every=0,
                workers=0, precision="fp32", seed=5, dense_share=0.3, warmup=2, lr=1e-3)
    return TrainConfig.preset_config("masked", "cpu", **{**base, **changes})


def _weights(trainer: PairedTrainer) -> dict[str, torch.Tensor]:
    return {f"{i}.{part}.{k}": v for i, s in enumerate(trainer.states) for part in ("model", "ema")
            for k, v in getattr(s, part).state_dict().items()}


def test_resume_continues_the_pair_exactly(data_dir, tmp_path):
    straight = fit_paired(tiny_cfg(), PairedPaths(tmp_path / "a", data_dir, None), progress=False)
    fit_paired(tiny_cfg(iterations=2), PairedPaths(tmp_path / "b", data_dir, None), progress=False)
    resumed = fit_paired(tiny_cfg(), PairedPaths(tmp_path / "b", data_dir, None), resume=True,
                         progress=False)
    assert resumed.iteration == straight.iteration == 4
    ours, theirs = _weights(resumed), _weights(straight)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    first = fit_paired(tiny_cfg(iterations=2), PairedPaths(tmp_path / "c", data_dir, None), progress=False)
    assert not all(torch.equal(v, _weights(first)[k]) for k, v in ours.items())  # the steps did train
    for preset in ("masked", "baseline"):
        assert (tmp_path / "b" / preset / "last.ckpt").is_file()
        rows = (tmp_path / "b" / preset / "log.csv").read_text().splitlines()
        assert rows[0].startswith("iteration,elapsed_s,loss") and rows[-1].startswith("4,")


def test_the_two_models_see_identical_patches(data_dir, tmp_path, monkeypatch):
    seen: list[tuple[str, torch.Tensor, torch.Tensor | None]] = []

    def recording(model, variant, device):
        name = "masked" if model.blocks[0].attn is masked_attn[0] else "baseline"

        def forward(x, keep_maps=None):
            seen.append((name, x.clone(), keep_maps))
            return model(x, keep_maps=keep_maps)
        return forward

    masked_attn = []
    real_init = PairedTrainer.__post_init__

    def init(self):
        masked_attn.append(self.states[0].model.blocks[0].attn)
        real_init(self)

    monkeypatch.setattr(PairedTrainer, "__post_init__", init)
    monkeypatch.setattr(paired_module, "build_forward", recording)
    fit_paired(tiny_cfg(iterations=2), PairedPaths(tmp_path, data_dir, None), progress=False)
    assert [name for name, _, _ in seen] == ["masked", "baseline"] * 2
    for (_, masked, keeps), (_, noisy, none) in zip(seen[::2], seen[1::2], strict=True):
        kept = masked != -0.1
        assert torch.equal(masked[kept], noisy[kept]) and 0.3 < float(kept.float().mean()) < 0.7
        assert keeps is not None and keeps.shape[0] == 4 and none is None
    assert not torch.equal(seen[0][1], seen[2][1])  # a new batch each iteration


def test_the_paired_step_is_the_cpu_paths_step():
    cfg = tiny_cfg(dense_share=0.0)
    clean = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    reference = new_state(cfg, CPU)
    loss = train_step(reference, reference.model, clean, cfg, step_generator(cfg, 0, 0, CPU), "fp32")
    gen = step_generator(cfg, 0, 0, CPU)  # the same draws in the same order
    noisy = (clean + torch.randn(clean.shape, generator=gen) * (cfg.sigma / 255)).clamp_(0, 1)
    masked = masked_input(noisy, cfg, gen, 0)
    keeps = draw_keep_maps(4, 3, 16, 16, cfg.attn_mask_ratio, gen)
    states = (new_paired_state(cfg, CPU), new_paired_state(baseline_config(cfg), CPU))
    trainer = PairedTrainer(states, (cfg, baseline_config(cfg)), CPU, "fp32")
    losses = trainer.step(ResidentBatch(clean, noisy, masked, keeps))
    assert losses.tolist()[0] == pytest.approx(loss, rel=1e-6)
    for name, value in reference.model.state_dict().items():
        torch.testing.assert_close(states[0].model.state_dict()[name], value, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(states[0].ema.state_dict()[name], reference.ema.state_dict()[name])


def _trainer(cfg: TrainConfig, variant: str) -> PairedTrainer:
    states = (new_paired_state(cfg, CPU), new_paired_state(baseline_config(cfg), CPU))
    return PairedTrainer(states, (cfg, baseline_config(cfg)), CPU, "fp32", variant)


def test_unavailable_variants_fall_back_to_eager(monkeypatch, caplog):
    def refuse(model, mode=None):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", refuse)
    trainer = _trainer(tiny_cfg(), "compile+cudagraphs")
    assert trainer.variant == "eager"
    assert [f.split(":")[0] for f in trainer.fallbacks] == ["compile+cudagraphs", "compile"]
    assert "CUDA graphs need a CUDA device" in trainer.fallbacks[0]
    assert "falling back to eager" in caplog.text


def test_a_variant_failing_at_its_first_step_falls_back_before_any_weight_changes(data_dir, monkeypatch):
    def lazy_failure(model, mode=None):
        def forward(*args, **kwargs):
            raise RuntimeError("inductor: C compiler failed")
        return forward

    monkeypatch.setattr(torch, "compile", lazy_failure)
    cfg = tiny_cfg()
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 3, 16, 16, generator=gen)
    batch = ResidentBatch(clean, clean, clean, draw_keep_maps(4, 3, 16, 16, 0.75, gen))
    compiled, eager = _trainer(cfg, "compile"), _trainer(cfg, "eager")
    assert compiled.variant == "compile"
    losses = compiled.step(batch)
    assert compiled.variant == "eager" and "C compiler failed" in compiled.fallbacks[0]
    assert torch.equal(losses, eager.step(batch))
    assert all(torch.equal(a, b) for a, b in zip(_weights(compiled).values(), _weights(eager).values(),
                                                 strict=True))


def test_paired_command_writes_two_ordinary_runs(data_dir, tmp_path, capsys, monkeypatch):
    # Compiling for real takes minutes on a CPU: a stand-in that runs the model as it is.
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: model)
    out = tmp_path / "run"
    code = train_main(["--paired", "--size", "tiny", "--out", str(out), "--data", str(data_dir),
                       "--val", "none", "--iterations", "3", "--patch", "16", "--batch", "128",
                       "--precision", "fp32", "--threads", "1", "--no-progress", "--variant",
                       "compile+cudagraphs"])
    assert code == 0, capsys.readouterr()
    assert "weights written to" in capsys.readouterr().out
    for preset in ("masked", "baseline"):
        card = json.loads((out / preset / "model.json").read_text())
        assert card["name"] == preset and card["iterations"] == 3 and card["batch"] == 128
        assert card["train_config"]["lr"] == pytest.approx(1e-4 * 2 ** 0.5)  # sqrt(128 / 64)
        assert any("above the paper's 64" in line for line in card["departures"])
        assert card["step"]["variant"] == "compile"  # no CUDA graphs on a CPU
        assert card["step"]["fallbacks"][0].startswith("compile+cudagraphs: VariantUnavailable")
        assert (out / preset / "last.ckpt").is_file() and (out / preset / "log.csv").is_file()
    masked = json.loads((out / "masked" / "model.json").read_text())["train_config"]
    assert masked["input_mask"] == [0.8, 0.9]
    assert json.loads((out / "baseline" / "model.json").read_text())["train_config"]["input_mask"] is None


def test_paired_command_refuses_a_preset_and_half_an_init(data_dir, tmp_path, capsys):
    base = ["--paired", "--size", "tiny", "--out", str(tmp_path / "r"), "--data", str(data_dir),
            "--val", "none"]
    assert train_main([*base, "--preset", "masked"]) != 0
    assert "leave out --preset" in capsys.readouterr().err
    assert train_main([*base, "--init", "masked"]) != 0
    assert "--baseline-init" in capsys.readouterr().err
    assert train_main(["--out", str(tmp_path / "r")]) != 0
    assert "--preset is required" in capsys.readouterr().err
    assert train_main(["--preset", "masked", "--out", str(tmp_path / "r"), "--sdpa"]) != 0
    assert "options of --paired" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_step_options_default_to_the_eager_step():
    assert StepOptions() == StepOptions("eager", False)


def test_drawing_a_batch_and_the_forward_backward_read_nothing_back(data_dir, monkeypatch):
    """On a GPU each read-back (item, tolist, float(), bool()) waits for the device; the batch and
    the forward/backward of both models must not need one (fused Adam on CUDA reads none either)."""
    from model_core.train.resident import BatchMaker, load_resident

    cfg = tiny_cfg(dense_share=0.5, dense_final=0.0, mask_ramp=0.5)
    maker = BatchMaker(load_resident(data_dir, cfg.patch, CPU), cfg)
    trainer = _trainer(cfg, "eager")

    def read_back(*args, **kwargs):
        raise AssertionError("a value was read back from the device")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, read_back)
    losses = trainer._forward_backward(maker(3))
    monkeypatch.undo()
    assert losses.shape == (2,) and bool(torch.isfinite(losses).all())


def test_an_interrupt_checkpoints_both_and_half_a_pair_does_not_resume(data_dir, tmp_path, monkeypatch):
    real_step = PairedTrainer.step
    calls = []

    def step(self, batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(PairedTrainer, "step", step)
    trainer = fit_paired(tiny_cfg(iterations=10, checkpoint_every=100), PairedPaths(tmp_path, data_dir, None),
                         progress=False)
    assert trainer.iteration == 2 and all(s.interrupted for s in trainer.states)
    for preset in ("masked", "baseline"):
        assert torch.load(tmp_path / preset / "last.ckpt", weights_only=True)["iteration"] == 2
    monkeypatch.undo()
    (tmp_path / "baseline" / "last.ckpt").unlink()
    with pytest.raises((ValueError, FileExistsError), match="baseline|only one"):
        fit_paired(tiny_cfg(iterations=10), PairedPaths(tmp_path, data_dir, None), resume=True,
                   progress=False)
