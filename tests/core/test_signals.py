"""SIGTERM and SIGHUP in the middle of a write: a real child process, a real signal.

Each command runs as a child with ``MDN_TEST_PAUSE_WRITING`` naming its output, so that its
atomic write pauses once the temporary file holds the data; the test signals the child then
(and only the child: it runs in a session of its own) and checks what is left on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from model_core.argparsing import run_reported
from model_core.fileio import PAUSE_ENV
from model_core.imageio import read_image, write_image

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


def _picture(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def _signal_while_writing(args: list[str], target: Path, signum: int,
                          pause: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``mdn ARGS``, send ``signum`` while ``target``'s temporary file exists, wait for the end."""
    env = {**os.environ, PAUSE_ENV: pause or target.name, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "model_core.cli", *args], cwd=ROOT, env=env,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 180
        while not list(target.parent.glob(f".{target.name}.*.tmp")):
            if proc.poll() is not None or time.monotonic() > deadline:
                out, err = proc.communicate()
                pytest.fail(f"no write under way (status {proc.returncode}): {out}{err}")
            time.sleep(0.05)
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _temporary_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_noise_cleans_up_its_temporary_file(tmp_path: Path, signum: int) -> None:
    write_image(tmp_path / "clean.png", _picture())
    out = tmp_path / "out"
    out.mkdir()
    done = _signal_while_writing(["noise", str(tmp_path / "clean.png"), "-o", str(out / "n.png"),
                                  "--type", "gaussian"], out / "n.png", signum)
    assert done.returncode == 128 + signum, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"mdn noise: stopped by {signal.Signals(signum).name}"
    assert list(out.iterdir()) == []


def test_an_existing_file_survives_a_signal_during_its_replacement(tmp_path: Path) -> None:
    write_image(tmp_path / "clean.png", _picture())
    old = write_image(tmp_path / "n.png", _picture(seed=1))
    before = old.read_bytes()
    done = _signal_while_writing(["noise", str(tmp_path / "clean.png"), "-o", str(old), "--type",
                                  "speckle", "--overwrite"], old, signal.SIGTERM)
    assert done.returncode == 143, done.stderr
    assert old.read_bytes() == before and _temporary_files(tmp_path) == []


def test_denoise_cleans_up_its_temporary_file(tmp_path: Path) -> None:
    from model_core.network import MaskedSwinIR, SwinIRConfig
    from model_core.network.checkpoint import save_weights

    weights = save_weights(MaskedSwinIR(SwinIRConfig.tiny()), tmp_path / "tiny.safetensors")
    write_image(tmp_path / "a.png", _picture())
    out = tmp_path / "out"
    done = _signal_while_writing(["denoise", str(tmp_path / "a.png"), "-o", str(out), "--weights",
                                  str(weights), "--device", "cpu"], out / "a_denoised.png", signal.SIGTERM)
    assert done.returncode == 143, done.stderr
    assert "stopped by SIGTERM" in done.stderr and list(out.iterdir()) == []


def test_eval_cleans_up_its_temporary_file(tmp_path: Path) -> None:
    data = tmp_path / "Tiny"
    data.mkdir()
    write_image(data / "a.png", _picture())
    results = tmp_path / "results.json"
    done = _signal_while_writing(["eval", "--data", str(data), "--method", "noisy", "--noise",
                                  "gaussian:15", "--json", str(results), "--no-progress"],
                                 results, signal.SIGHUP)
    assert done.returncode == 129, done.stderr
    assert "mdn eval: stopped by SIGHUP" in done.stderr
    assert not results.exists() and _temporary_files(tmp_path) == []


def _train_args(tmp_path: Path) -> list[str]:
    data = tmp_path / "clean"
    data.mkdir(parents=True)
    for i in range(2):
        write_image(data / f"img{i}.png", _picture(40, 48, seed=i))
    return ["train", "--preset", "baseline", "--size", "tiny", "--out", str(tmp_path / "run"),
            "--data", str(data), "--val", "none", "--iterations", "1", "--batch", "2", "--patch", "16",
            "--workers", "0", "--threads", "1", "--precision", "fp32", "--no-progress"]


def test_train_export_leaves_no_temporary_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    # SIGHUP stops the export at once: no model, no temporary file; the checkpoint is kept.
    done = _signal_while_writing(_train_args(tmp_path), run / "model.safetensors", signal.SIGHUP)
    assert done.returncode == 129, done.stderr
    assert not (run / "model.safetensors").exists() and (run / "last.ckpt").is_file()
    assert _temporary_files(tmp_path) == []
    # SIGTERM is training's stop-after-the-iteration: the export under way ends, whole.
    done = _signal_while_writing(_train_args(tmp_path / "again"),
                                 tmp_path / "again" / "run" / "model.safetensors", signal.SIGTERM,
                                 pause="model.safetensors:2")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "again" / "run" / "model.safetensors").is_file()
    assert _temporary_files(tmp_path) == []


def test_an_ignored_hangup_stays_ignored_and_handlers_are_restored() -> None:
    seen = {}

    def body() -> int:
        seen["hup"], seen["term"] = signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGTERM)
        return 0

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        assert run_reported("mdn test", body) == 0
        assert seen["hup"] == signal.SIG_IGN and seen["term"] not in (signal.SIG_DFL, signal.SIG_IGN)
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_the_pause_hook_is_off_without_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PAUSE_ENV, raising=False)
    start = time.monotonic()
    write_image(tmp_path / "x.png", _picture())
    assert time.monotonic() - start < 5 and read_image(tmp_path / "x.png").shape == (24, 32)
