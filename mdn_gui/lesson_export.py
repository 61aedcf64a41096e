"""``mdn-gui --export-lessons DIR``: one picture per step of the tour and a handout.

Each step is applied in the real window, measured, and grabbed as ``DIR/lesson-NN.png``;
``DIR/lessons.html`` then holds every picture (embedded, so the file opens offline on its own),
the step's text and the numbers measured in this export.
"""

from __future__ import annotations

import base64
import html
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from mdn_gui.figure_lessons import figure_rows
from mdn_gui.lessons import Lesson, Measurement, lesson_text, live_sentence
from mdn_gui.scripted import background_busy, report, save_screenshot
from model_core.fileio import atomic_replace

if TYPE_CHECKING:
    from mdn_gui.views.main_window import MainWindow

HANDOUT = "lessons.html"
SETTLE_POLL_MS = 100
SETTLE_LIMIT_MS = 600_000


def picture_name(index: int) -> str:
    """``lesson-01.png`` for the first step (0-based ``index``)."""
    return f"lesson-{index + 1:02d}.png"


def export_paths(folder: Path, count: int) -> list[Path]:
    """Every file an export of ``count`` steps writes into ``folder``."""
    return [folder / picture_name(i) for i in range(count)] + [folder / HANDOUT]


@dataclass
class ExportedStep:
    """One step of an export: what it showed and what was measured."""

    index: int
    lesson: Lesson
    picture: Path
    measurement: Measurement


def measured_rows(lesson: Lesson, m: Measurement) -> list[tuple[str, str]]:
    """The numbers of a measurement as (what, value) rows of the handout's table.

    Only what the lesson ran is listed (lesson 1 runs the baseline alone: no masked weights, no
    token share of an unmasked run), and each PSNR says what it was measured on: the whole image
    for the runs, a centre crop for the sweeps.
    """
    ran = set(lesson.runs)
    rows = [("noise", m.noise)]
    rows += [
        (f"PSNR {key} (whole image)", f"{value:.2f} dB")
        for key, value in m.psnr.items()
        if key == "noisy" or key in ran
    ]
    if m.kept is not None and (m.kept < 1.0 or lesson.live == "keep"):
        rows.append(("tokens kept (first block)", f"{m.kept:.1%}"))
    if m.input_kept is not None:
        rows.append(("input pixels kept", f"{m.input_kept:.1%}"))
    if m.std_mean is not None:
        rows.append((f"mean std over {m.passes} passes", f"{m.std_mean:.2f} (8-bit levels)"))
    for what, sweep, unit in (("sweep", m.sweep, ""), ("mask-ratio sweep", m.ratio_sweep, " %")):
        rows += [
            (f"{what} on a centre crop: {name}", ", ".join(f"{x:g}{unit}: {y:.2f} dB" for x, y in sorted(p)))
            for name, p in sweep.items()
        ]
    rows += figure_rows(m)  # lessons 7 and 8
    rows += [(f"weights ({choice})", line) for choice, line in m.weights.items() if line and choice in ran]
    return rows


def handout_html(steps: list[ExportedStep]) -> str:
    """The handout: each step's picture (embedded as a data URI), text and measured numbers."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>mdn: lessons on masked training</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "img{width:100%;border:1px solid #888}td{padding:2px 8px;vertical-align:top}"
        ".live{background:#eef4fb;padding:.5em}</style></head><body>",
        "<h1>Masked image training, step by step</h1>",
    ]
    for step in steps:
        data = base64.b64encode(step.picture.read_bytes()).decode("ascii")
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td class='value'>{html.escape(v)}</td></tr>"
            for k, v in measured_rows(step.lesson, step.measurement)
        )
        parts += [
            f"<section id='lesson-{step.index + 1}'>",
            f"<h2>Lesson {step.index + 1}: {html.escape(step.lesson.title)}</h2>",
            f"<img alt='{html.escape(picture_name(step.index))}' src='data:image/png;base64,{data}'>",
            f"<p>{html.escape(lesson_text(step.lesson))}</p>",
            f"<p class='live'>{html.escape(live_sentence(step.lesson, step.measurement))}</p>",
            f"<table>{rows}</table></section>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_text(path: Path, text: str, *, overwrite: bool) -> None:
    """Write ``text`` through a temporary file in the same folder, then rename (never half a file).

    Raises:
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
    """
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    atomic_replace(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


class LessonExport(QObject):
    """Applies every step in turn, grabs the window, and writes the handout at the end.

    Signals:
        finished (exit_code): the export is done or failed; the window is closed.
    """

    finished = Signal(int)

    def __init__(self, window: MainWindow, folder: Path, *, overwrite: bool = False) -> None:
        super().__init__()
        self.window, self.folder, self.overwrite = window, folder, overwrite
        self.lessons = window.tour.lessons
        self.steps: list[ExportedStep] = []
        self._settle_ms = 0
        self.lessons.measured.connect(self._measured)

    def start(self) -> None:
        """Begin with the first step."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._apply(0)

    def _apply(self, index: int) -> None:
        self._settle_ms = 0
        self.window.tour.start(index)

    def _measured(self, index: int, _measurement: Measurement) -> None:
        QTimer.singleShot(300, lambda: self._settle(index))

    def _settle(self, index: int) -> None:
        if background_busy(self.window) and self._settle_ms < SETTLE_LIMIT_MS:
            self._settle_ms += SETTLE_POLL_MS
            QTimer.singleShot(SETTLE_POLL_MS, lambda: self._settle(index))
            return
        try:
            self._grab(index)
        except Exception as exc:  # noqa: BLE001 - reported; the export still ends
            report("could not export the lessons", exc)
            self._end(1)
            return
        if index + 1 < len(self.lessons.lessons):
            self._apply(index + 1)
        else:
            self._write_handout()

    def _grab(self, index: int) -> None:
        measurement = self.lessons.measurement
        assert measurement is not None  # measured has just been emitted
        path = save_screenshot(self.window, self.folder / picture_name(index), overwrite=self.overwrite)
        self.steps.append(ExportedStep(index, self.lessons.lessons[index], path, measurement))
        print(f"mdn-gui: lesson {index + 1}: {path}")
        if measurement.error:
            print(f"mdn-gui: lesson {index + 1}: {measurement.error}", file=sys.stderr)

    def _write_handout(self) -> None:
        path = self.folder / HANDOUT
        try:
            write_text(path, handout_html(self.steps), overwrite=self.overwrite)
        except Exception as exc:  # noqa: BLE001 - reported; the export still ends
            report("could not write the handout", exc)
            self._end(1)
            return
        print(f"mdn-gui: handout written to {path}")
        self._end(1 if any(step.measurement.error for step in self.steps) else 0)

    def _end(self, code: int) -> None:
        self.lessons.measured.disconnect(self._measured)
        from mdn_gui.scripted import close_window

        close_window(self.window)
        self.finished.emit(code)
