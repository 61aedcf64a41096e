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
from model_core.train.run import RunPaths, fit, train

ROOT = Path(__file__).resolve().parents[2]


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
def test_bad_options_are_refused_before_any_work(data_dir, tmp_path, capsys, option, value):
    out = tmp_path / "run"
    code = train_main(["--preset", "masked", "--size", "tiny", "--out", str(out), "--data",
                       str(data_dir), "--val", "none", "--iterations", "2", option, value])
    err = capsys.readouterr().err
    assert code in (1, 2) and err.startswith("mdn train: error: ") and len(err.splitlines()) == 1, err
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
    with pytest.raises(ValueError, match="no usable validation image"):
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
    assert "history" not in loaded.card and "departures" not in loaded.card  # the paper's recipe


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
    assert card["init"] == "first/model.safetensors"  # kept across the resume, without local paths
    assert "init" not in load_weights(first / "model.safetensors").card
    # So does its checkpoint, as `mdn info last.ckpt` shows it.
    ckpt_card = load_weights(second / "last.ckpt").card
    assert ckpt_card["iterations"] == 4 and ckpt_card["total_iterations"] == 7
    assert ckpt_card["init"] == "first/model.safetensors"
    assert ckpt_card["total_wall_time_s"] == pytest.approx(card["total_wall_time_s"], abs=0.11)
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


def _common(data_dir: Path, *extra: str) -> list[str]:
    return ["--preset", "masked", "--size", "tiny", "--data", str(data_dir), "--val", "none",
            "--batch", "2", "--patch", "16", "--workers", "0", "--precision", "fp32", "--no-progress",
            *extra]


def _same_weights(a: Path, b: Path) -> bool:
    first, second = load_weights(a).model.state_dict(), load_weights(b).model.state_dict()
    return all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="POSIX signals")
def test_ctrl_c_in_the_middle_of_a_step_still_resumes_exactly(data_dir, tmp_path, monkeypatch):
    """Ctrl-C lands anywhere, e.g. between the optimiser step and the EMA update: the run
    stops after that iteration, so its checkpoint is a state the uninterrupted run went through."""
    from model_core.train import loop

    straight = fit(tiny_cfg(), RunPaths(tmp_path / "a", data_dir, None), progress=False)
    real_update, calls = loop.update_ema, []

    def update(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real_update(*args, **kwargs)

    monkeypatch.setattr(loop, "update_ema", update)
    stopped = fit(tiny_cfg(checkpoint_every=100), RunPaths(tmp_path / "b", data_dir, None), progress=False)
    assert stopped.interrupted and stopped.iteration == 2
    monkeypatch.setattr(loop, "update_ema", real_update)
    resumed = fit(tiny_cfg(), RunPaths(tmp_path / "b", data_dir, None), resume=True, progress=False)
    for name in ("model", "ema"):
        ours, theirs = getattr(resumed, name).state_dict(), getattr(straight, name).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name


def test_user_errors_are_one_line_without_traceback(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main([*_common(data_dir), "--out", str(run), "--iterations", "2"]) == 0
    capsys.readouterr()
    cases = [
        (["--out", str(run), "--iterations", "2"], "--resume"),  # holds a run
        (["--out", str(tmp_path / "x"), "--init", str(tmp_path / "nope.safetensors")], "nope"),
        (["--out", str(tmp_path / "x"), "--init", "masked"], "lite"),  # shipped, another size
        (["--out", str(tmp_path / "x"), "--val", str(tmp_path / "nowhere")], "validation folder"),
        (["--out", str(tmp_path / "x"), "--data", str(tmp_path / "nowhere")], "nowhere"),
    ]
    for extra, words in cases:
        assert train_main([*_common(data_dir), *extra]) == 1, extra
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.startswith("mdn train: error: ") and words in err, err
    assert train_main([*_common(data_dir), "--out", str(run), "--resume", "--preset", "baseline"]) == 1
    assert "masked" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_init_from_a_training_checkpoint(data_dir, tmp_path):
    first = tmp_path / "first"
    assert train_main([*_common(data_dir), "--out", str(first), "--iterations", "2"]) == 0
    second = tmp_path / "second"
    assert train_main([*_common(data_dir), "--out", str(second), "--iterations", "1", "--init",
                       str(first / "last.ckpt"), "--seed", "1"]) == 0
    assert load_weights(second / "model.safetensors").card["history"][0]["iterations"] == 2


def test_resume_keeps_the_options_of_the_run(data_dir, tmp_path, capsys):
    """`--resume` without repeating every option continues the same run, not the defaults."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    options = ["--iterations", "4", "--lr", "3e-4", "--seed", "3"]
    assert train_main([*_common(data_dir), "--out", str(straight), *options]) == 0
    assert train_main([*_common(data_dir), "--out", str(split), "--iterations", "2", *options[2:]]) == 0
    assert train_main(["--preset", "masked", "--out", str(split), "--resume", "--iterations", "4",
                       "--data", str(data_dir), "--val", "none", "--no-progress"]) == 0
    assert _same_weights(straight / "model.safetensors", split / "model.safetensors")
    capsys.readouterr()
    # A changed option that shapes the samples is allowed, but said.
    assert train_main([*_common(data_dir), "--out", str(split), "--resume", "--iterations", "5",
                       "--batch", "3"]) == 0
    assert "batch" in capsys.readouterr().err


def test_validation_image_too_small_for_the_network_is_skipped(data_dir, tmp_path, caplog):
    val = tmp_path / "val"
    val.mkdir()
    cv2.imwrite(str(val / "a_line.png"), np.full((1, 40, 3), 90, np.uint8))
    cv2.imwrite(str(val / "b.png"), np.full((24, 24, 3), 120, np.uint8))
    with caplog.at_level(logging.WARNING):
        fit(tiny_cfg(iterations=2, val_every=2), RunPaths(tmp_path / "run", data_dir, val), progress=False)
    assert "a_line.png" in caplog.text
    (val / "b.png").unlink()
    with pytest.raises(ValueError, match="no usable validation image"):
        fit(tiny_cfg(iterations=2, val_every=2), RunPaths(tmp_path / "run2", data_dir, val),
            progress=False)
    assert not (tmp_path / "run2").exists()


def test_publish_over_the_size_limit_leaves_the_shipped_model_alone(data_dir, tmp_path, monkeypatch):
    from model_core.train import publish as publish_module

    run = tmp_path / "run"
    assert train_main([*_common(data_dir), "--out", str(run), "--iterations", "1"]) == 0
    ship = tmp_path / "ship"
    first = publish_module.publish(run, "masked", ship)
    before = first.read_bytes(), first.with_suffix(".json").read_bytes()
    monkeypatch.setattr(publish_module, "MAX_BYTES", 1000)
    with pytest.raises(ValueError, match="20 MB|limit"):
        publish_module.publish(run, "masked", ship, {"note": "new"}, overwrite=True)
    assert (first.read_bytes(), first.with_suffix(".json").read_bytes()) == before
    with pytest.raises(ValueError):
        publish_module.publish(run, "other", ship)
    assert sorted(p.name for p in ship.iterdir()) == ["masked.json", "masked.safetensors"]


def test_log_rows_after_the_resumed_checkpoint_are_dropped(data_dir, tmp_path):
    """A run killed hard resumes from its last checkpoint: the log must not repeat iterations."""
    val = tmp_path / "val"
    val.mkdir()
    cv2.imwrite(str(val / "v.png"), np.full((24, 24, 3), 120, np.uint8))
    paths = RunPaths(tmp_path / "run", data_dir, val)
    cfg = tiny_cfg(iterations=4, val_every=1)  # a log row every iteration
    fit(cfg, paths, progress=False)
    payload = torch.load(paths.checkpoint, weights_only=True)
    payload["iteration"] = 2  # as if the run was killed at 4 with its last checkpoint at 2
    torch.save(payload, paths.checkpoint)
    fit(cfg, paths, resume=True, progress=False)
    rows = (paths.out_dir / "log.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["1", "2", "3", "4"]


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="POSIX signals")
@pytest.mark.parametrize("where", ["update", "forward"])
def test_a_second_signal_stops_at_once_with_a_consistent_checkpoint(data_dir, tmp_path, monkeypatch,
                                                                    where):
    """`timeout` signals twice (the command, then its group): inside the weight update the
    second signal waits for the update to end; elsewhere it stops at once."""
    from model_core.train import loop

    target = (loop, "update_ema") if where == "update" else (run_module, "train_step")
    real, calls = getattr(*target), []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(*target, wrapped)
    paths = RunPaths(tmp_path / "run", data_dir, None)
    stopped = fit(tiny_cfg(iterations=10, checkpoint_every=100), paths, progress=False)
    done = 3 if where == "update" else 2
    assert stopped.interrupted and stopped.iteration == done
    assert torch.load(paths.checkpoint, weights_only=True)["iteration"] == done
    monkeypatch.setattr(*target, real)
    resumed = fit(tiny_cfg(), paths, resume=True, progress=False)
    straight = fit(tiny_cfg(), RunPaths(tmp_path / "straight", data_dir, None), progress=False)
    ours, theirs = resumed.ema.state_dict(), straight.ema.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_folder_with_trained_weights_but_no_checkpoint_is_not_overwritten(data_dir, tmp_path):
    """E.g. last.ckpt deleted to save space: neither a new run nor --resume may replace the model."""
    paths = RunPaths(tmp_path / "run", data_dir, None)
    train(tiny_cfg(iterations=2), paths, progress=False)
    paths.checkpoint.unlink()
    model = paths.out_dir / "model.safetensors"
    before = model.read_bytes()
    for resume in (False, True):
        with pytest.raises(FileExistsError, match="--overwrite"):
            fit(tiny_cfg(iterations=2, seed=4), paths, resume=resume, progress=False)
    assert model.read_bytes() == before
    train(tiny_cfg(iterations=2, seed=4), paths, overwrite=True, progress=False)
    assert model.read_bytes() != before


@pytest.mark.parametrize("content", [b"junk", b"PK\x03\x04" + b"\x00" * 40])
def test_a_damaged_checkpoint_is_one_line(data_dir, tmp_path, capsys, content):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.ckpt").write_bytes(content)
    assert train_main([*_common(data_dir), "--out", str(run), "--resume", "--iterations", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mdn train: error: ") and "last.ckpt" in err and len(err.splitlines()) == 1
    assert (run / "last.ckpt").read_bytes() == content


def test_resume_keeps_the_data_and_validation_folders_of_the_run(data_dir, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train_main([*_common(data_dir), "--out", str(straight), "--iterations", "4"]) == 0
    assert train_main([*_common(data_dir), "--out", str(split), "--iterations", "2"]) == 0
    assert train_main(["--preset", "masked", "--out", str(split), "--resume", "--iterations", "4",
                       "--no-progress"]) == 0
    assert _same_weights(straight / "model.safetensors", split / "model.safetensors")
    assert load_weights(split / "model.safetensors").card["data"] == data_dir.name


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="POSIX signals")
def test_signals_while_the_run_winds_down_let_it_save(data_dir, tmp_path, monkeypatch):
    """Signals that come while the checkpoint is written (or workers stop, or weights are
    exported) must not cut that short: it is what the stop is waiting for."""
    real_save = run_module.save_checkpoint

    def save(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(run_module, "save_checkpoint", save)
    paths = RunPaths(tmp_path / "run", data_dir, None)
    _, state = train(tiny_cfg(iterations=10, checkpoint_every=2), paths, progress=False)
    assert state.interrupted and state.iteration == 2
    assert torch.load(paths.checkpoint, weights_only=True)["iteration"] == 2
    assert load_weights(paths.out_dir / "model.safetensors").card["iterations"] == 2


def test_checkpoints_keep_absolute_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: relative --data/--val were saved as typed; --resume from another folder failed."""
    from model_core.train.run import RunPaths

    monkeypatch.chdir(tmp_path)
    sources = RunPaths(Path("out"), Path("clean"), Path("val")).sources()
    assert sources == {"data": str(tmp_path / "clean"), "val": str(tmp_path / "val")}
    assert RunPaths(Path("out"), Path("clean"), None).sources()["val"] is None


def test_noisy_training_patches_are_clipped_before_the_input_mask():
    from model_core.network.masks import INPUT_MASK_FILL
    from model_core.train.loop import make_inputs

    clean = torch.cat([torch.zeros(2, 3, 16, 16), torch.ones(2, 3, 16, 16)])
    for preset in ("baseline", "masked"):
        cfg = tiny_cfg(sigma=50.0) if preset == "masked" else TrainConfig.preset_config(
            "baseline", model_size="tiny", sigma=50.0)
        inputs = make_inputs(clean, cfg, torch.Generator().manual_seed(0))
        kept = inputs[inputs != INPUT_MASK_FILL]
        assert kept.numel() > 0 and kept.min() >= 0 and kept.max() <= 1
        # the noise is there: clipping took the half of it that left [0, 1], not all of it
        dark = inputs[:2][inputs[:2] != INPUT_MASK_FILL]
        assert 0.3 < float((dark > 0).float().mean()) < 0.7


def test_dense_share_leaves_that_share_of_patches_without_input_mask():
    from model_core.network.masks import INPUT_MASK_FILL
    from model_core.train.loop import make_inputs

    clean = torch.full((8, 3, 16, 16), 0.3)
    dense_counts = []
    for seed in range(40):
        inputs = make_inputs(clean, tiny_cfg(dense_share=0.3, sigma=1.0),
                             torch.Generator().manual_seed(seed))
        dropped = (inputs == INPUT_MASK_FILL).all(dim=1).float().mean(dim=(1, 2))
        dense = dropped == 0
        assert bool((dropped[~dense] > 0.7).all())  # the others keep the paper's 80-90 % mask
        assert bool(dense[:int(dense.sum())].all())  # the dense ones lead the batch
        dense_counts.append(int(dense.sum()))
    assert set(dense_counts) == {2, 3}  # 0.3 x 8 = 2.4 in expectation
    assert abs(np.mean(dense_counts) - 2.4) < 0.3
    paper = make_inputs(clean, tiny_cfg(sigma=1.0), torch.Generator().manual_seed(0))
    assert bool(((paper == INPUT_MASK_FILL).all(dim=1).float().mean(dim=(1, 2)) > 0.7).all())


def test_cosine_tail_ends_the_schedule_at_zero():
    from model_core.train.loop import LrSchedule

    schedule = LrSchedule(warmup=2, milestones=(), gamma=0.5, iterations=100, cosine_tail=0.25)
    factors = [schedule(it) for it in range(101)]
    assert factors[0] == 0.5 and factors[1:76] == [1.0] * 75  # warm-up, then flat until 75
    assert factors[75:] == sorted(factors[75:], reverse=True)
    assert factors[88] == pytest.approx(0.5, abs=0.07) and factors[100] == pytest.approx(0.0)


def test_cpu_recipe_is_a_named_departure_for_masked_and_baseline():
    masked = TrainConfig.preset_config("masked", "cpu")
    baseline = TrainConfig.preset_config("baseline", "cpu")
    paper = TrainConfig.preset_config("masked")
    assert masked.recipe == baseline.recipe == "cpu" and paper.recipe == "paper"
    assert masked.dense_share == 0.25 and baseline.dense_share == 0 and paper.dense_share == 0
    # the paper's masks are kept, and both presets of the recipe share its schedule
    assert (masked.input_mask, masked.attn_mask_ratio) == (paper.input_mask, paper.attn_mask_ratio)
    differ = {k for k, v in masked.to_dict().items() if baseline.to_dict()[k] != v}
    assert differ == {"preset", "input_mask", "attn_mask_ratio", "dense_share"}
    assert paper.departures(fine_tuned=True) == []
    assert "25% of the patches are left dense" in masked.departures(fine_tuned=True)[0]
    assert not any("dense" in line for line in baseline.departures(fine_tuned=True))
    assert baseline.departures(fine_tuned=True)
    with pytest.raises(ValueError, match="dense_share needs an input mask"):
        TrainConfig.preset_config("baseline", dense_share=0.25)
    with pytest.raises(ValueError, match="recipe"):
        TrainConfig.preset_config("masked", "fast")


def test_validation_logs_every_unseen_noise(data_dir, tmp_path):
    from model_core.train.publish import validation_table

    val = tmp_path / "val"
    val.mkdir()
    cv2.imwrite(str(val / "v.png"), np.full((24, 24, 3), 120, np.uint8))
    run = tmp_path / "run"
    assert train_main([
        "--preset", "masked", "--recipe", "cpu", "--size", "tiny", "--out", str(run), "--data",
        str(data_dir), "--val", str(val), "--iterations", "2", "--batch", "2", "--patch", "16",
        "--val-every", "2", "--workers", "0", "--precision", "fp32", "--no-progress"]) == 0
    (row,) = validation_table(run / "log.csv")
    noises = ("gaussian15", "poisson2.5", "speckle0.024", "mixture2", "correlated50")
    assert {f"{n}_psnr" for n in noises} | {"unseen_psnr"} <= set(row)
    assert row["unseen_psnr"] == pytest.approx(np.mean([row[f"{n}_psnr"] for n in noises[1:]]),
                                               abs=2e-3)
    card = load_weights(run / "model.safetensors").card
    assert card["train_config"]["recipe"] == "cpu"
    assert any("dense" in line for line in card["departures"])  # the card lists the departures


def test_curves_tables_and_figure_from_logs_and_cards(tmp_path, capsys):
    from model_core.train.curves import main as curves_main

    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text(
        "iteration,elapsed_s,loss,lr,val_gaussian15_psnr,val_poisson2.5_psnr,val_speckle0.024_psnr,"
        "val_mixture2_psnr,val_correlated50_psnr,val_unseen_psnr\n"
        "50,10,0.1,0.0002,,,,,,\n100,20,0.1,0.0002,30.5,27.25,28,27.5,26,27.1875\n")
    old = tmp_path / "old"  # a log of earlier mdn: Poisson 2.5 was its one unseen noise
    old.mkdir()
    (old / "log.csv").write_text("iteration,elapsed_s,loss,lr,val_gaussian15_psnr,val_unseen_psnr\n"
                                 "300,5,0.1,0.0002,20.1,19.9\n")
    md, png = tmp_path / "c.md", tmp_path / "c.png"
    args = ["--run", f"new={run}", "--run", f"old={old}", "--markdown", str(md), "--plot", str(png)]
    assert curves_main(args) == 0
    text = md.read_text()
    assert "| 100 | 30.50 | 27.25 | 28.00 | 27.50 | 26.00 | 27.19 |" in text
    assert "| 300 | 20.10 | 19.90 |" in text and "| 50 |" not in text
    assert cv2.imdecode(np.frombuffer(png.read_bytes(), np.uint8), cv2.IMREAD_COLOR).shape[1] > 600
    assert curves_main(args) == 1  # outputs exist: not replaced unasked
    assert "exists" in capsys.readouterr().err
    assert curves_main(["--run", f"x={tmp_path / 'nothing'}"]) == 1


def test_curves_chain_the_stages_of_a_campaign(tmp_path, capsys):
    from model_core.train.curves import main as curves_main

    header = "iteration,elapsed_s,loss,lr,val_gaussian15_psnr,val_unseen_psnr\n"
    first = tmp_path / "c1-masked.csv"  # a stage's log.csv, kept after its run folder is gone
    first.write_text(header + "500,5,0.1,0.0002,25.0,24.0\n4000,9,0.1,0,28.0,27.0\n")
    second = tmp_path / "c2-masked"
    second.mkdir()
    (second / "log.csv").write_text(header + "500,5,0.1,0.0002,28.5,27.5\n")
    png = tmp_path / "c.png"
    assert curves_main(["--run", f"masked={first}+{second}", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "| 4000 | 28.00 | 27.00 |" in out and "| 4500 | 28.50 | 27.50 |" in out
    assert png.stat().st_size > 0
    assert curves_main(["--run", f"masked={first}+"]) == 1  # an empty stage is refused
