"""The tour: lessons as data, sentences that follow the measured numbers, stepping, slides."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from mdn_gui import app, lesson_export
from mdn_gui import lessons as lesson_data
from mdn_gui.app import main, parse_args
from mdn_gui.catalog import ModelCatalog
from mdn_gui.controllers.lessons import LessonController
from mdn_gui.lessons import LESSONS, PAPER, Measurement, live_sentence
from mdn_gui.plots.mask_view import MODES as MASK_MODES
from mdn_gui.samples import SAMPLES
from mdn_gui.state import BUILTIN_LAYERS, VIEW_MODES, psnr_text
from mdn_gui.views.main_window import MainWindow
from mdn_gui.views.tour import first_launch
from model_core.noise import NoiseSpec

TIMEOUT = 60_000
COMPARE = LESSONS[1]


def measured(qtbot, window: MainWindow, index: int) -> Measurement:
    lessons = window.tour.lessons
    with qtbot.waitSignal(lessons.measured, timeout=TIMEOUT) as blocker:
        lessons.apply(index)
    assert blocker.args[0] == index
    return blocker.args[1]


# --------------------------------------------------------------------------- data and sentences


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.title for lesson in LESSONS])
def test_every_step_is_complete_data(lesson: lesson_data.Lesson) -> None:
    spec = NoiseSpec.parse(lesson.noise)
    assert lesson.sample in SAMPLES and spec.level > 0
    assert {lesson.a, lesson.b} <= set(BUILTIN_LAYERS) and lesson.mode in VIEW_MODES
    assert lesson.panel in ("metrics", "sweeps", "masks", "paper", "features")
    assert lesson.mask_mode is None or lesson.mask_mode in MASK_MODES
    assert lesson.runs or lesson.sweeps, "a step shows something measured"
    assert live_sentence(lesson, Measurement(noise=lesson.noise))  # every kind has a writer


def test_the_steps_follow_the_readme_walkthrough() -> None:
    titles = [lesson.title.lower() for lesson in LESSONS]
    assert titles[:2] == ["the problem", "the fix"] and "input" in titles[4] and "measure" in titles[5]
    assert [lesson.passes for lesson in LESSONS][3] == 8 and LESSONS[4].input_ratio == 0.85


@pytest.mark.parametrize(
    ("masked", "baseline", "verdict"),
    [
        (21.5, 27.7, "Unlike the paper, the baseline leads here in PSNR, by 6.20 dB"),
        (29.0, 24.0, "As in the paper, the masked model leads here in PSNR, by 5.00 dB"),
        (25.0, 25.1, "within 0.3 dB"),
    ],
)
def test_the_comparison_reads_true_whichever_way_the_numbers_fall(
    masked: float, baseline: float, verdict: str
) -> None:
    m = Measurement(noise="poisson:2.5", psnr={"noisy": 22.0, "masked": masked, "baseline": baseline})
    text = live_sentence(COMPARE, m)
    assert f"masked {masked:.2f} dB, baseline {baseline:.2f} dB" in text
    assert "The paper: 28.7 vs 23.8 dB" in text and verdict in text
    assert ("below its own noisy input" in text) == (masked < 22.0)


def test_a_missing_model_is_said_not_guessed() -> None:
    text = live_sentence(COMPARE, Measurement(noise="poisson:2.5", psnr={"noisy": 20.0, "baseline": 27.0}))
    assert text.startswith("Not measured here") and "masked" in text and "leads" not in text


def test_the_sweep_sentence_counts_levels_from_the_points() -> None:
    sweep = {
        "masked model": [(2.0, 25.0), (2.5, 24.0), (3.0, 20.0)],
        "baseline model": [(2.0, 23.0), (2.5, 24.1), (3.0, 22.0)],
    }
    text = live_sentence(LESSONS[5], Measurement(noise="poisson:2.5", sweep=sweep))
    assert "masked model 24.00 dB, baseline model 24.10 dB" in text
    assert "leads at 1, trails at 1 and ties at 1" in text


def test_every_paper_number_of_the_reference_is_in_the_measure_step() -> None:
    for reading in PAPER.values():
        assert f"{reading.masked:.1f} vs {reading.baseline:.1f}" in LESSONS[5].paper


# --------------------------------------------------------------------------- in the window


def test_a_step_sets_the_whole_state_and_its_numbers_match_the_screen(
    qtbot, small_lessons: tuple, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window()
    m = measured(qtbot, window, 1)
    doc = window.doc
    assert (doc.noise.kind, doc.noise.level, doc.noise.seed) == ("poisson", 2.5, 1)
    assert doc.model.model == "masked" and doc.model.attn_ratio == pytest.approx(0.75)
    assert (doc.view.a, doc.view.b, doc.view.mode) == ("baseline", "masked", "split")
    assert window.tour.dock.isVisible() and not window.tour.lessons.busy
    live = window.tour.panel.live.text()
    assert live == live_sentence(small_lessons[1], m)
    for key in ("masked", "baseline", "noisy"):  # the same numbers as the view's labels and bars
        shown = psnr_text(doc.metrics[key].psnr)
        assert shown in live and shown in window.compare.label(key)


def test_a_step_brings_its_panel_forward(qtbot, small_lessons: tuple, make_window) -> None:
    window = make_window()
    m = measured(qtbot, window, 3)  # why passes differ: the std map of 2 passes
    assert window.mask_view.current_mode() == "std" and window.mask_view.isVisible()
    assert m.std_mean is not None and m.std_mean > 0 and window.doc.model.passes == 2
    m = measured(qtbot, window, 4)
    assert window.mask_view.current_mode() == "input" and m.input_kept == pytest.approx(0.15, abs=0.05)


def test_previous_next_and_the_step_is_remembered(
    qtbot, small_lessons: tuple, make_window, private_settings: Path
) -> None:
    window = make_window()
    tour = window.tour
    assert tour.next_action.shortcut().toString() == "Alt+Right"
    assert tour.previous_action.shortcut().toString() == "Alt+Left"
    measured(qtbot, window, 0)
    with qtbot.waitSignal(tour.lessons.measured, timeout=TIMEOUT):
        tour.next_action.trigger()
    assert tour.lessons.index == 1 and f"Lesson 2 of {len(LESSONS)}" in tour.panel.heading.text()
    assert tour.panel.next_button.isEnabled() and tour.panel.previous_button.isEnabled()
    settings = QSettings(str(private_settings), QSettings.Format.IniFormat)
    again = LessonController(window.session, window.analysis, settings)
    assert again.index == 1


def test_the_first_launch_offers_the_tour_and_later_ones_do_not(
    qtbot, small_lessons: tuple, make_window
) -> None:
    window = make_window()
    assert first_launch(window)
    with qtbot.waitSignal(window.tour.lessons.measured, timeout=TIMEOUT):
        window.tour.welcome()
    assert window.banner.isVisible() and "tour" in window.banner.label.text()
    assert window.tour.dock.isVisible() and window.tour.lessons.index == 0
    assert not first_launch(make_window())
    assert app._welcome_due(window, parse_args([])) and not app._welcome_due(window, parse_args(["--run"]))


# --------------------------------------------------------------------------- slides


@pytest.fixture
def tiny_app(monkeypatch: pytest.MonkeyPatch, catalog: ModelCatalog, small_lessons: tuple) -> None:
    """The entry point with the tiny models (the shipped ones take seconds a step)."""
    monkeypatch.setattr(ModelCatalog, "discover", classmethod(lambda cls: catalog))


def test_lesson_option_opens_at_the_step_set_up_and_run(qtbot, tiny_app: None, tmp_path: Path) -> None:
    shot = tmp_path / "step3.png"
    assert main(["--lesson", "3", "--screenshot", str(shot), "--quit", "--size", "1000x700"]) == 0
    assert shot.is_file() and shot.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        parse_args(["--lesson", str(len(LESSONS) + 1)])
    with pytest.raises(SystemExit):
        parse_args(["--lesson", "1", "--export-lessons", str(tmp_path)])


def test_export_writes_every_step_and_a_handout_with_the_numbers_on_screen(
    qtbot, tiny_app: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str]] = []
    grab = lesson_export.save_screenshot

    def recording(window: MainWindow, path: Path, *, overwrite: bool) -> Path:
        seen.append({k: psnr_text(v.psnr) for k, v in window.doc.metrics.items()})
        return grab(window, path, overwrite=overwrite)

    monkeypatch.setattr(lesson_export, "save_screenshot", recording)
    folder = tmp_path / "slides"
    assert main(["--export-lessons", str(folder), "--size", "1000x700"]) == 0
    pictures = sorted(p.name for p in folder.glob("lesson-*.png"))
    assert pictures == [f"lesson-{i:02d}.png" for i in range(1, len(LESSONS) + 1)] and len(LESSONS) == 8
    page = (folder / "lessons.html").read_text(encoding="utf-8")
    assert page.count("src='data:image/png;base64,") == 8 and "src='lesson" not in page
    sections = page.split("<section")[1:]
    for numbers, section in zip(seen, sections, strict=True):
        for key in ("masked", "baseline"):
            if key in numbers:
                assert f"PSNR {key} (whole image)</td><td class='value'>{numbers[key]}" in section
    assert re.search(r"Unlike the paper|As in the paper|within 0.3 dB", sections[1])
    assert "masked - baseline, poisson (centre crops)" in sections[6]
    assert "Here, masked minus baseline" in sections[6]
    assert "feature distance D, masked model" in sections[7] and "D = " in sections[7]
    with pytest.raises(SystemExit):  # a second export does not overwrite the first unasked
        parse_args(["--export-lessons", str(folder)])
