"""Lessons 7 and 8: the paper's two figures, their sentences written from the measured numbers."""

from __future__ import annotations

import pytest

from mdn_gui.figure_lessons import figure_rows, kind_leads, paper_sentence
from mdn_gui.lessons import LESSONS, Measurement, live_sentence
from mdn_gui.views.main_window import MainWindow
from model_core.eval.paper import PAPER_KINDS, paper_curve
from tests.gui.test_lessons import measured

PAPER_LESSON, FEATURES_LESSON = LESSONS[6], LESSONS[7]


def figure(masked_lead: dict[str, tuple[float, float]]) -> dict[str, dict[str, list]]:
    """Masked and baseline series on the paper's levels, the lead going linearly from a to b."""
    masked, base = {}, {}
    for kind in PAPER_KINDS:
        levels = [p.level for p in paper_curve(kind)]
        a, b = masked_lead.get(kind, (0.0, 0.0))
        steps = [a + (b - a) * i / (len(levels) - 1) for i in range(len(levels))]
        base[kind] = [(x, 25.0, 0.7) for x in levels]
        masked[kind] = [(x, 25.0 + d, 0.7) for x, d in zip(levels, steps, strict=True)]
    return {"masked model": masked, "baseline model": base, "noisy input": base}


def test_the_two_lessons_are_the_last_two() -> None:
    assert [lesson.title for lesson in LESSONS[6:]] == [
        "The further the noise, the bigger the lead", "What the network sees"]
    assert PAPER_LESSON.panel == "paper" and PAPER_LESSON.sweeps == ("paper-figure",)
    assert FEATURES_LESSON.panel == "features" and FEATURES_LESSON.sweeps == ("features",)


def test_the_paper_sentence_follows_the_leads() -> None:
    growing = figure({k: (-0.5, 2.0) for k in PAPER_KINDS})
    m = Measurement(paper=growing, paper_pixels=16384, paper_source="this image (chelsea)")
    text = live_sentence(PAPER_LESSON, m)
    assert text == paper_sentence(m)
    assert "poisson -0.50 dB at 2, +2.00 dB at 3.5" in text and "the paper +2.80 and +5.95" in text
    assert "grows with the level on all 4 noises, as in the paper" in text and "16,384 pixels" in text
    assert "+2.00 dB at 3.5 (ahead from 2.5)" in text  # Poisson 2: -0.50, 2.5: +0.33 dB
    mixed = figure({"poisson": (0.0, 1.0), "speckle": (1.0, -1.0)})
    text = paper_sentence(Measurement(paper=mixed))
    assert "grows with the level on 1 of the 4 noises (poisson)" in text and "It shrinks on speckle" in text
    flat = paper_sentence(Measurement(paper=figure({})))
    assert "does not grow with the level on any of the 4 noises, unlike the paper" in flat
    assert paper_sentence(Measurement()).startswith("Not measured here")


def test_the_paper_numbers_are_the_differences_of_the_shown_points() -> None:
    leads = kind_leads(Measurement(paper=figure({"mixture": (1.234, 5.678)})))
    assert leads["mixture"][0] == (1, pytest.approx(1.23))
    assert leads["mixture"][-1] == (5, pytest.approx(5.68))
    rows = dict(figure_rows(Measurement(paper=figure({}), paper_pixels=100, paper_source="x")))
    assert rows["masked - baseline, speckle (centre crops)"].startswith("0.018: +0.00 dB")


@pytest.mark.parametrize(
    ("masked", "baseline", "verdict"),
    [
        (0.02, 0.30, "As in the paper, the masked model's features move less with the noise: 15.0 times"),
        (0.30, 0.02, "Unlike the paper, the masked model's features move more"),
        (0.010, 0.011, "move about equally with the noise, unlike the paper's"),
    ],
)
def test_the_features_sentence_follows_the_distances(masked: float, baseline: float, verdict: str) -> None:
    m = Measurement(features={"baseline model": baseline, "masked model": masked}, features_pixels=400)
    text = live_sentence(FEATURES_LESSON, m)
    assert verdict in text and f"masked model D = {masked:.3f}" in text and "400 pixels" in text
    assert ("nearly coincide" in text) == (min(masked, baseline) < 0.05)
    assert live_sentence(FEATURES_LESSON, Measurement()).startswith("Not measured here")


def test_lessons_7_and_8_run_in_the_window_and_say_what_they_measured(
    qtbot, small_lessons: tuple, make_window
) -> None:
    window: MainWindow = make_window()
    window.figures.set_settings(paper_crop=32, features_crop=32)
    m = measured(qtbot, window, 6)
    assert window.paper_plot.isVisible() and not m.error
    assert set(kind_leads(m)) == set(PAPER_KINDS) and m.paper_pixels == 32 * 32
    assert window.tour.panel.live.text() == live_sentence(small_lessons[6], m)
    (masked,) = [c for c in [window.paper_plot.curve("psnr", "poisson", "masked model")] if c is not None]
    shown = dict(zip(*masked.getData(), strict=True))
    assert shown[2.0] == pytest.approx(m.paper["masked model"]["poisson"][0][1])
    m = measured(qtbot, window, 7)
    assert window.features_plot.isVisible() and set(m.features) == {"baseline model", "masked model"}
    for title, (label, d) in zip(window.features_plot.titles(), m.features.items(), strict=True):
        assert title == f"{label}: D = {d:.3f}" and f"{label} D = {d:.3f}" in window.tour.panel.live.text()
