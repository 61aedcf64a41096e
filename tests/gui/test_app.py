"""The entry point: command line, scripted start with a screenshot, and an end-to-end run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from mdn_gui import app, scripted
from mdn_gui.app import main, parse_args
from mdn_gui.controllers.session import SessionController
from mdn_gui.scripted import ScriptedStart
from mdn_gui.views.main_window import MainWindow
from model_core.imageio import read_image, write_image

REPO = Path(__file__).resolve().parents[2]


def assert_not_blank(path: Path) -> None:
    """A real screenshot: varied pixels, many colours, not one flat fill."""
    image = read_image(path).rgb
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert float(image.std()) > 0.05
    colours = np.unique((image[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200


def test_command_line_options() -> None:
    args = parse_args(
        "--open x.png --noise poisson:2.5 --seed 1 --model masked --run --screenshot s.png --quit".split()
    )
    assert args.open == Path("x.png") and args.noise == "poisson:2.5" and args.seed == 1
    assert args.run and args.quit and args.screenshot == Path("s.png")
    with pytest.raises(SystemExit):
        parse_args(["--sample", "nope"])
    with pytest.raises(SystemExit):
        parse_args(["--as-noisy"])
    with pytest.raises(SystemExit):
        parse_args(["--noise", "poisson:99"])


def test_scripted_start_runs_and_saves_a_screenshot(
    qtbot, tmp_path: Path, tiny_weights: dict[str, Path]
) -> None:
    image = write_image(tmp_path / "photo.png", np.random.default_rng(1).random((96, 128, 3), np.float32))
    shot = tmp_path / "shot.png"
    options = "--noise poisson:2.5 --seed 1 --model masked --mode side --run --quit --size 1200x800"
    files = ["--open", str(image), "--weights", str(tiny_weights["masked"]), "--screenshot", str(shot)]
    code = main([*options.split(), *files])
    assert code == 0
    assert_not_blank(shot)


def test_scripted_start_reports_a_failed_run(qtbot, tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense")
    code = main(["--sample", "chart", "--weights", str(bad), "--run", "--quit"])
    assert code == 1


def test_scripted_start_fails_on_a_missing_file(qtbot, tmp_path: Path) -> None:
    assert main(["--open", str(tmp_path / "missing.png"), "--quit"]) == 2


def test_end_to_end_entry_point(tmp_path: Path, tiny_weights: dict[str, Path]) -> None:
    """The real entry point in a fresh interpreter, as a user (or a course script) runs it."""
    shot = tmp_path / "out.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MDN_GUI_SETTINGS=str(tmp_path / "s.ini"))
    env["PYTHONPATH"] = str(REPO)
    command = [sys.executable, "-m", "mdn_gui.app", "--sample", "chart", "--run", "--quit"]
    command += ["--weights", str(tiny_weights["masked"]), "--screenshot", str(shot)]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_not_blank(shot)


HUNG = 99  # the exit code the watchdog gives a scripted start that never ended


class WatchedStart(ScriptedStart):
    """A scripted start that ends with HUNG after 30 s instead of hanging the tests."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.watchdog = QTimer(self)
        self.watchdog.setSingleShot(True)
        self.watchdog.timeout.connect(lambda: self.finished.emit(HUNG))
        self.watchdog.start(30_000)


@pytest.fixture
def watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scripted starts of this test are :class:`WatchedStart` s."""
    monkeypatch.setattr(app, "ScriptedStart", WatchedStart)


@pytest.fixture
def closed_windows(monkeypatch: pytest.MonkeyPatch) -> list[MainWindow]:
    """Windows the entry point closed (to check that their worker threads stopped)."""
    closed: list[MainWindow] = []

    def close(window: MainWindow) -> None:
        closed.append(window)
        scripted.close_window.__wrapped__(window)  # type: ignore[attr-defined]

    close.__wrapped__ = scripted.close_window  # type: ignore[attr-defined]
    monkeypatch.setattr(scripted, "close_window", close)
    monkeypatch.setattr(app, "close_window", close)
    return closed


@pytest.mark.parametrize(
    "options",
    [
        "--passes 0",
        "--passes 65",
        "--passes two",
        "--seed -1",
        "--seed 2147483648",
        "--size 100000x100000",
        "--size 0x0",
        "--size 1000by700",
        "--attn-ratio nan",
        "--attn-ratio 0.96",
        "--attn-ratio -0.1",
        "--screenshot shot.gif",
    ],
)
def test_bad_numbers_are_usage_errors(options: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--sample", "chart", *options.split()])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("mdn-gui: error:") and options.split()[0] in error


@pytest.mark.parametrize("options", ["--bogus", "--as-noisy", "--model zzz", "--seed x", "--size 10x10"])
def test_usage_errors_are_one_line(options: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(options.split())
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mdn-gui: error:"), captured.err
    assert "--help" in lines[0] and not captured.out


def test_limits_of_the_numbers_are_accepted() -> None:
    args = parse_args("--passes 64 --seed 2147483647 --size 8192x100 --attn-mask 0.95".split())
    assert (args.passes, args.seed, args.size, args.attn_ratio) == (64, 2**31 - 1, "8192x100", 0.95)
    assert parse_args("--passes 1 --seed 0 --attn-ratio 0".split()).passes == 1


def test_screenshot_target_is_checked_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "shot.png"
    existing.write_bytes(b"the user's file")
    a_file = tmp_path / "afile"
    a_file.write_bytes(b"")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    for target, reason in ((existing, "--overwrite"), (a_file / "x.png", "is a file"), (folder, "a folder")):
        with pytest.raises(SystemExit):
            parse_args(["--screenshot", str(target)])
        assert reason in capsys.readouterr().err
    assert parse_args(["--screenshot", str(existing), "--overwrite"]).overwrite
    assert existing.read_bytes() == b"the user's file"


@pytest.mark.parametrize("late", ["file", "parent"])
def test_a_screenshot_that_cannot_be_written_ends_the_script(
    late: str,
    qtbot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    watchdog: None,
) -> None:
    """The target became unwritable after the options were checked: one line, exit 1, no hang."""
    monkeypatch.setattr(app, "_screenshot_problem", lambda *_: None)
    (tmp_path / "afile").write_bytes(b"")
    shot = tmp_path / "shot.png" if late == "file" else tmp_path / "afile" / "x.png"
    if late == "file":
        shot.write_bytes(b"the user's file")
    assert main(["--sample", "chart", "--screenshot", str(shot), "--quit"]) == 1
    err = capsys.readouterr().err
    assert "could not save the screenshot" in err and "Traceback" not in err
    if late == "file":
        assert shot.read_bytes() == b"the user's file"
    expected = ["afile", "shot.png"] if late == "file" else ["afile"]
    assert sorted(p.name for p in tmp_path.iterdir()) == expected  # no temporary file left


def test_overwrite_replaces_a_screenshot_atomically(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watchdog: None
) -> None:
    shot = tmp_path / "shot.png"
    shot.write_bytes(b"old")
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        replaced.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    assert (
        main(["--sample", "chart", "--size", "1200x800", "--screenshot", str(shot), "--overwrite", "--quit"])
        == 0
    )
    assert_not_blank(shot)
    assert [Path(dst) for _, dst in replaced] == [shot]  # written beside it, then renamed over it
    assert Path(replaced[0][0]).parent == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == ["shot.png"]


def test_an_error_in_the_scripted_start_ends_the_app(
    qtbot,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    watchdog: None,
    closed_windows: list[MainWindow],
) -> None:
    def boom(*_: object, **__: object) -> None:
        raise ValueError("passes must be >= 1, got 0")

    monkeypatch.setattr(SessionController, "run_now", boom)
    assert main(["--sample", "chart", "--run", "--quit"]) == 1
    assert "mdn-gui: scripted start failed: passes must be >= 1" in capsys.readouterr().err
    assert len(closed_windows) == 1 and not closed_windows[0].session.backend.is_running()


def test_an_error_while_applying_the_options_ends_the_app(
    qtbot,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    closed_windows: list[MainWindow],
) -> None:
    def boom(*_: object, **__: object) -> None:
        raise ValueError("seed must be non-negative, got -1")

    monkeypatch.setattr(SessionController, "open_sample", boom)
    assert main(["--sample", "chart", "--quit"]) == 2
    err = capsys.readouterr().err
    assert "mdn-gui: could not apply the command line: seed must be non-negative" in err
    assert "Traceback" not in err
    assert len(closed_windows) == 1 and not closed_windows[0].session.backend.is_running()


def test_pyside_void_calls_do_not_leak_references_to_none(qapp) -> None:
    """PySide6 6.12.0 takes a reference from None per void call: on Python 3.11 a long session
    then aborts ("none_dealloc"). pyproject.toml keeps PySide6 below 6.12 for that."""
    from PySide6.QtWidgets import QWidget

    widget = QWidget()
    before = sys.getrefcount(None)
    for _ in range(1000):
        widget.update()
        widget.setEnabled(True)
    assert sys.getrefcount(None) >= before - 10  # other code may drop a few of its own
    widget.deleteLater()
