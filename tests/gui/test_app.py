"""The entry point: command line, scripted start with a screenshot, and an end-to-end run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mdn_gui.app import main, parse_args
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
