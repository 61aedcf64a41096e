"""Training: presets, exact resume, interruption, bad data, DDP replicas, the CLI."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model_core.network.checkpoint import load_weights
from model_core.train import run as run_module
from model_core.train.cli import main as train_main
from model_core.train.config import TrainConfig
from model_core.train.run import RunPaths, fit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "clean"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        img = cv2.GaussianBlur(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8), (5, 5), 2)
        cv2.imwrite(str(folder / f"img{i}.png"), img)
    return folder


def tiny_cfg(**changes) -> TrainConfig:
    base = dict(model_size="tiny", patch=16, batch=2, iterations=4, checkpoint_every=2,
                val_every=0, workers=0, precision="fp32")
    return TrainConfig.preset_config("masked", **{**base, **changes})


def test_presets_differ_only_in_the_masks():
    masked = TrainConfig.preset_config("masked").to_dict()
    baseline = TrainConfig.preset_config("baseline").to_dict()
    assert {k for k in masked if masked[k] != baseline[k]} == {"preset", "input_mask", "attn_mask_ratio"}
    assert masked["attn_mask_ratio"] == 0.75 and masked["input_mask"] == [0.8, 0.9]
    assert baseline["attn_mask_ratio"] == 0.0 and baseline["input_mask"] is None


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"preset": "masked", "learning_rate": 1})


def test_resume_continues_exactly(data_dir, tmp_path):
    schedule = {"warmup": 3, "milestones": (3,)}  # the resume lands inside the warm-up
    straight = fit(tiny_cfg(**schedule), RunPaths(tmp_path / "a", data_dir, None), progress=False)
    fit(tiny_cfg(iterations=2, **schedule), RunPaths(tmp_path / "b", data_dir, None), progress=False)
    resumed = fit(tiny_cfg(**schedule), RunPaths(tmp_path / "b", data_dir, None), resume=True,
                  progress=False)
    assert resumed.iteration == straight.iteration == 4
    assert resumed.scheduler.get_last_lr() == straight.scheduler.get_last_lr()
    for name in ("model", "ema"):
        ours, theirs = getattr(resumed, name).state_dict(), getattr(straight, name).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name
    assert resumed.optimizer.state_dict()["state"][0]["step"] == 4


def test_checkpoint_with_a_multistep_scheduler_still_resumes(data_dir, tmp_path):
    from model_core.train.loop import load_checkpoint, new_state

    cfg = tiny_cfg(lr=1e-3, milestones=(2,))
    fit(cfg, RunPaths(tmp_path / "old", data_dir, None), progress=False)
    path = tmp_path / "old" / "last.ckpt"
    payload = torch.load(path, weights_only=True)
    state = new_state(cfg, torch.device("cpu"))
    old = torch.optim.lr_scheduler.MultiStepLR(state.optimizer, [2], 0.5)
    for _ in range(4):
        state.optimizer.step()
        old.step()
    payload["scheduler"] = old.state_dict()  # as written by earlier mdn versions
    torch.save(payload, path)
    resumed = new_state(cfg, torch.device("cpu"))
    load_checkpoint(resumed, cfg, path)
    assert resumed.scheduler.last_epoch == 4
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)


def test_interrupt_writes_a_checkpoint(data_dir, tmp_path, monkeypatch):
    real_step = run_module.train_step
    calls = []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(run_module, "train_step", step)
    state = fit(tiny_cfg(iterations=10, checkpoint_every=100), RunPaths(tmp_path, data_dir, None),
                progress=False)
    assert state.iteration == 2
    payload = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert payload["iteration"] == 2


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX")
def test_stop_signal_to_the_whole_process_group_still_exports(data_dir, tmp_path):
    """What `timeout`, a job scheduler or Ctrl-C do: every process of the run, DataLoader
    workers included, gets the signal; the run must still stop in order."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "model_core.train", "--preset", "masked", "--size", "tiny",
           "--out", str(out), "--data", str(data_dir), "--val", "none", "--iterations", "100000",
           "--batch", "4", "--patch", "32", "--checkpoint-every", "3", "--workers", "1",
           "--threads", "1", "--precision", "fp32", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.ckpt").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, output  # stopped early: scripts can tell
    assert "killed by signal" not in output and "continue with --resume" in output
    assert load_weights(out / "model.safetensors").card["iterations"] >= 3


def test_a_failing_run_exits_with_one_line_and_writes_nothing(tmp_path):
    """A worker that fails must not leave the run hanging on exit (it once did)."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    cv2.imwrite(str(bad / "small.png"), np.zeros((20, 20, 3), np.uint8))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "model_core.train", "--preset", "masked", "--size", "tiny",
           "--out", str(out), "--data", str(bad), "--val", "none", "--iterations", "3",
           "--workers", "1", "--threads", "1", "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "no usable training image" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("option, value", [
    ("--ema", "2"), ("--seed", "-1"), ("--checkpoint-every", "0"), ("--val-limit", "0"),
    ("--threads", "-2"), ("--device", "xyz"), ("--device", "meta")])
def test_bad_options_are_refused_before_any_work(data_dir, tmp_path, option, value):
    out = tmp_path / "run"
    with pytest.raises(ValueError):
        train_main(["--preset", "masked", "--size", "tiny", "--out", str(out), "--data", str(data_dir),
                    "--val", "none", "--iterations", "2", option, value])
    assert not out.exists()


def test_unreadable_validation_image_is_skipped(data_dir, tmp_path, caplog):
    val = tmp_path / "val"
    val.mkdir()
    (val / "a_broken.png").write_bytes(b"not an image")
    cv2.imwrite(str(val / "b.png"), np.full((24, 24, 3), 120, np.uint8))
    cfg = tiny_cfg(iterations=2, val_every=2)
    with caplog.at_level(logging.WARNING):
        fit(cfg, RunPaths(tmp_path / "run", data_dir, val), progress=False)
    assert "a_broken.png" in caplog.text
    assert "val_unseen_psnr" in (tmp_path / "run" / "log.csv").read_text()
    (val / "b.png").unlink()
    with pytest.raises(ValueError, match="no readable validation image"):
        fit(cfg, RunPaths(tmp_path / "run2", data_dir, val), progress=False)


def test_resume_without_a_checkpoint_says_so(data_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        fit(tiny_cfg(iterations=1), RunPaths(tmp_path / "typo", data_dir, None), resume=True,
            progress=False)
    assert "no checkpoint to resume" in caplog.text


def test_new_run_does_not_replace_an_earlier_one_unasked(data_dir, tmp_path):
    paths = RunPaths(tmp_path / "run", data_dir, None)
    fit(tiny_cfg(iterations=50), paths, progress=False)  # the log gets a row every 50 iterations
    before = paths.checkpoint.read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        fit(tiny_cfg(iterations=50, seed=5), paths, progress=False)
    assert paths.checkpoint.read_bytes() == before
    fit(tiny_cfg(iterations=50, seed=5), paths, overwrite=True, progress=False)
    assert paths.checkpoint.read_bytes() != before
    rows = (paths.out_dir / "log.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,") and [r.split(",")[0] for r in rows[1:]] == ["50"]


def test_unreadable_training_image_is_skipped(data_dir, tmp_path, caplog):
    (data_dir / "broken.png").write_bytes(b"not an image at all")
    with caplog.at_level(logging.WARNING):
        state = fit(tiny_cfg(iterations=6), RunPaths(tmp_path, data_dir, None), progress=False)
    assert state.iteration == 6
    assert "broken.png" in caplog.text


def test_train_command_exports_weights_and_card(data_dir, tmp_path):
    val = tmp_path / "val"
    val.mkdir()
    cv2.imwrite(str(val / "v.png"), np.full((24, 24, 3), 120, np.uint8))
    out = tmp_path / "run"
    code = train_main([
        "--preset", "baseline", "--size", "tiny", "--out", str(out), "--data", str(data_dir),
        "--val", str(val), "--iterations", "2", "--batch", "2", "--patch", "16", "--val-every", "2",
        "--workers", "0", "--precision", "fp32", "--no-progress"])
    assert code == 0
    loaded = load_weights(out / "model.safetensors")
    assert loaded.card["iterations"] == 2 and loaded.card["train_config"]["preset"] == "baseline"
    assert "val_unseen_psnr" in (out / "log.csv").read_text()
    assert "history" not in loaded.card


def test_fine_tuned_card_carries_the_earlier_stages(data_dir, tmp_path):
    first = tmp_path / "first"
    common = ["--preset", "masked", "--size", "tiny", "--data", str(data_dir), "--val", "none",
              "--batch", "2", "--patch", "16", "--workers", "0", "--precision", "fp32", "--no-progress"]
    assert train_main([*common, "--out", str(first), "--iterations", "3"]) == 0
    second = tmp_path / "second"
    assert train_main([*common, "--out", str(second), "--iterations", "2", "--init",
                       str(first / "model.safetensors"), "--warmup", "2", "--seed", "1",
                       "--checkpoint-every", "1"]) == 0
    # A resumed fine-tuning keeps its lineage too.
    assert train_main([*common, "--out", str(second), "--iterations", "4", "--resume", "--warmup", "2",
                       "--seed", "1"]) == 0
    card = load_weights(second / "model.safetensors").card
    assert [stage["iterations"] for stage in card["history"]] == [3]
    assert card["history"][0]["seed"] == 0 and card["train_config"]["warmup"] == 2
    assert card["iterations"] == 4 and card["total_iterations"] == 7
    assert card["total_patches_seen"] == 7 * 2
    # So does its checkpoint, as `mdn info last.ckpt` shows it.
    ckpt_card = load_weights(second / "last.ckpt").card
    assert ckpt_card["iterations"] == 4 and ckpt_card["total_iterations"] == 7
    assert [stage["iterations"] for stage in ckpt_card["history"]] == [3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_replicas_stay_identical(data_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           str(ROOT / "tests" / "core" / "ddp_worker.py"), str(data_dir), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    first = torch.load(tmp_path / "replica0.pt", weights_only=True)
    second = torch.load(tmp_path / "replica1.pt", weights_only=True)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["iteration"] == 3


def test_learning_rate_warms_up_then_decays_at_milestones():
    from model_core.train.loop import new_state

    cfg = tiny_cfg(lr=1e-3, warmup=4, milestones=(6, 8), gamma=0.5)
    state = new_state(cfg, torch.device("cpu"))
    lrs = []
    for _ in range(9):
        lrs.append(state.optimizer.param_groups[0]["lr"])
        state.optimizer.step()
        state.scheduler.step()
    np.testing.assert_allclose(lrs, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])
    assert new_state(tiny_cfg(lr=1e-3), torch.device("cpu")).optimizer.param_groups[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="warmup"):
        tiny_cfg(warmup=-1)


def test_ema_warm_up_forgets_the_initial_weights():
    from model_core.train.loop import ema_decay_at

    assert ema_decay_at(0.999, 0) == 0.1
    assert ema_decay_at(0.999, 10**6) == 0.999
    kept = np.prod([ema_decay_at(0.999, t) for t in range(1000)])
    assert kept < 1e-3 < 0.999**1000


def test_publish_adds_validation_table_and_refuses_overwrite(data_dir, tmp_path):
    from model_core.train.publish import publish

    val = tmp_path / "val"
    val.mkdir()
    cv2.imwrite(str(val / "v.png"), np.full((24, 24, 3), 120, np.uint8))
    run = tmp_path / "run"
    code = train_main([
        "--preset", "masked", "--size", "tiny", "--out", str(run), "--data", str(data_dir),
        "--val", str(val), "--iterations", "2", "--batch", "2", "--patch", "16", "--val-every", "1",
        "--workers", "0", "--precision", "fp32", "--no-progress"])
    assert code == 0
    out = publish(run, "masked", tmp_path / "ship", {"note": "test"})
    card = load_weights(out).card
    assert [row["iteration"] for row in card["validation"]] == [1, 2]
    assert card["note"] == "test" and card["name"] == "masked"
    with pytest.raises(FileExistsError):
        publish(run, "masked", tmp_path / "ship")


def test_the_final_weights_are_validated(data_dir, tmp_path):
    val = tmp_path / "val"
    val.mkdir()
    cv2.imwrite(str(val / "v.png"), np.full((24, 24, 3), 120, np.uint8))
    fit(tiny_cfg(iterations=3, val_every=2), RunPaths(tmp_path / "run", data_dir, val), progress=False)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows if r.split(",")[-1]] == ["2", "3"]
