"""The Lessons panel: the tour's step, its text, what was measured, and Previous/Next."""

from __future__ import annotations

import html

import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from mdn_gui.controllers.lessons import LessonController
from mdn_gui.lessons import Measurement, lesson_text, live_sentence

MEASURING = "Measuring with the loaded weights..."
STALE = (
    "Measured on this lesson's set-up, before you changed {what}: the screen no longer shows "
    "these numbers. Set up again measures them anew."
)


class LessonsPanel(QWidget):
    """Shows the lesson controller's step; its buttons step through the tour.

    Args:
        lessons: The lesson controller.
    """

    def __init__(self, lessons: LessonController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lessons = lessons
        self.heading = QLabel(self)
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.text = QLabel(self)
        self.live = QLabel(self)
        for label in (self.text, self.live):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.live.setObjectName("lesson-live")
        # Set apart from the fixed text: these are the numbers measured on screen.
        self.live.setStyleSheet("QLabel#lesson-live { border-left: 3px solid #1f77b4; padding-left: 6px; }")
        self.previous_button = QPushButton(qta.icon("fa6s.chevron-left"), "Previous", self)
        self.previous_button.setToolTip("Previous step (Alt+Left)")
        self.apply_button = QPushButton(qta.icon("fa6s.rotate-right"), "Set up again", self)
        self.apply_button.setToolTip("Set the workbench up for this step and measure it again")
        self.next_button = QPushButton(qta.icon("fa6s.chevron-right"), "Next", self)
        self.next_button.setToolTip("Next step (Alt+Right)")
        self.next_button.setLayoutDirection(Qt.LayoutDirection.RightToLeft)  # the arrow after the word
        buttons = QVBoxLayout()
        for button in (self.previous_button, self.apply_button, self.next_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        # The words scroll rather than being cut off when the dock is short; the tour grows the
        # dock to fit them (needed_height) once a step is measured.
        self.words = QWidget(self)
        words = QVBoxLayout(self.words)
        words.setContentsMargins(0, 0, 0, 0)
        words.addWidget(self.heading)
        words.addWidget(self.text)
        words.addWidget(self.live)
        words.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidget(self.words)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QHBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addLayout(buttons)
        self.previous_button.clicked.connect(lambda _=False: lessons.previous())
        self.next_button.clicked.connect(lambda _=False: lessons.next())
        self.apply_button.clicked.connect(lambda _=False: lessons.apply(lessons.index))
        lessons.step_changed.connect(self._step_changed)
        lessons.measured.connect(self._measured)
        lessons.stale_changed.connect(lambda _what: self._show_live())
        self.show_step(lessons.index, applied=False)

    def show_step(self, index: int, *, applied: bool = True) -> None:
        """Show step ``index``'s text (``applied`` False: not set up yet, nothing measured)."""
        lesson, total = self.lessons.lessons[index], len(self.lessons.lessons)
        self.heading.setText(f"<b>Lesson {index + 1} of {total}: {html.escape(lesson.title)}</b>")
        self.text.setText(lesson_text(lesson))
        self.live.setText(MEASURING if applied else "Press Set up again to set this step up and measure it.")
        self.live.setEnabled(True)
        self.previous_button.setEnabled(index > 0)
        self.next_button.setEnabled(index + 1 < total)

    def _step_changed(self, index: int) -> None:
        self.show_step(index)

    def _measured(self, index: int, measurement: Measurement) -> None:
        if index == self.lessons.index:
            self._show_live()

    def _show_live(self) -> None:
        """The measured sentence; greyed, with a word on why, once the user changed what it measured."""
        m, what = self.lessons.measurement, self.lessons.stale
        if m is None:
            return
        sentence = live_sentence(self.lessons.lesson, m)
        if what:
            sentence = f"{STALE.format(what=what)}\n{sentence}"
        self.live.setText(sentence)
        self.live.setEnabled(not what)  # the style's disabled colour: grey

    def needed_height(self) -> int:
        """Height the panel needs to show all its words at its present width, unscrolled."""
        words = self.words.layout().totalHeightForWidth(self.scroll.viewport().width())
        margins = self.layout().contentsMargins()
        return max(words, self.layout().minimumSize().height()) + margins.top() + margins.bottom()
