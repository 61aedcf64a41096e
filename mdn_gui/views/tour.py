"""The tour in the window: the Lessons dock, the Help menu, and the first-launch welcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from mdn_gui import lessons as lesson_data
from mdn_gui.controllers.lessons import SETTINGS_KEY, LessonController
from mdn_gui.views.actions import make_action
from mdn_gui.views.help import about_dialog, shortcuts_dialog
from mdn_gui.views.lessons_panel import LessonsPanel

if TYPE_CHECKING:
    from mdn_gui.views.main_window import MainWindow

DOCK_HEIGHT = 170
MAX_DOCK_SHARE = 0.4
# The Paper figure and Features panels of lessons 7 and 8 get this share of the window's width.
WIDE_PANELS, WIDE_SHARE = ("paper", "features"), 0.55


def welcome_text(total: int) -> str:
    """The first-launch words, for a tour of ``total`` lessons (counted, never written out by hand)."""
    article = "an" if str(total).startswith("8") or total in (11, 18) else "a"  # "an 8-step", "an 11-step"
    return (
        f"Welcome to mdn. This is lesson 1 of {article} {total}-step tour of masked training (the Lessons "
        "panel below): Next (Alt+Right) goes on, Help > Tour (F1) brings it back. The numbers in "
        "the lesson are measured here, with the weights that are loaded."
    )


WELCOME = welcome_text(len(lesson_data.LESSONS))


def first_launch(window: MainWindow) -> bool:
    """Whether this settings file has never seen the tour (no step remembered yet)."""
    return not window.settings.contains(SETTINGS_KEY)


class Tour:
    """Builds the Lessons dock and the Help menu of a window and keeps them in step.

    Args:
        window: The main window (its docks are built, its menus not yet).
    """

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.lessons = LessonController(
            window.session, window.analysis, window.settings, lesson_data.LESSONS, parent=window,
            figures=window.figures,
        )
        self.panel = LessonsPanel(self.lessons, window)
        self.dock = QDockWidget("Lessons", window)
        self.dock.setObjectName("dock-lessons")
        self.dock.setWidget(self.panel)
        # Under the image and the plots; the controls keep the window's full height.
        window.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()  # until the tour is asked for
        self.lessons.step_changed.connect(self._step_changed)
        self.lessons.measured.connect(lambda _index, _m: self.fit_dock())

    def build_menu(self) -> None:
        """Add the Help menu (after the window's other menus)."""
        w = self.window
        self.tour_action = make_action(
            w,
            "&Tour",
            self.start,
            icon="fa6s.graduation-cap",
            shortcut="F1",
            tip=f"The {len(lesson_data.LESSONS)}-step tour of masked training",
        )
        self.next_action = make_action(w, "&Next Lesson", self.lessons.next, shortcut="Alt+Right")
        self.previous_action = make_action(w, "&Previous Lesson", self.lessons.previous, shortcut="Alt+Left")
        self.shortcuts_action = make_action(
            w, "&Keyboard Shortcuts", lambda: shortcuts_dialog(w).show(), icon="fa6s.keyboard"
        )
        self.about_action = make_action(
            w, "&About mdn", lambda: about_dialog(w, w.session.catalog).show(), icon="fa6s.circle-info"
        )
        help_menu = w.menuBar().addMenu("&Help")
        for action in (self.tour_action, self.previous_action, self.next_action, None):
            help_menu.addAction(action) if action is not None else help_menu.addSeparator()
        help_menu.addAction(self.shortcuts_action)
        help_menu.addAction(self.about_action)
        self.help_menu = help_menu

    def start(self, index: int | None = None) -> None:
        """Show the Lessons dock and apply a step (default: the remembered one)."""
        self.lessons.apply(self.lessons.index if index is None else index)

    def welcome(self) -> None:
        """First launch: lesson 1, set up and run at once, with a word on the tour."""
        self.start(0)
        self.window.banner.show_message(WELCOME, error=False)

    def _drop_welcome(self, index: int) -> None:
        """The welcome speaks of lesson 1: it goes once the user moves to another lesson."""
        banner = self.window.banner
        if index != 0 and banner.isVisible() and banner.label.text() == WELCOME:
            banner.hide()

    def fit_dock(self) -> None:
        """Grow the dock to show the step's words unscrolled, up to 40 % of the window's height
        (beyond that they scroll; the image keeps the rest)."""
        if not self.dock.isVisible():
            return
        title = self.dock.height() - self.panel.height()  # the dock's title bar and frame
        want = min(self.panel.needed_height() + title, int(self.window.height() * MAX_DOCK_SHARE))
        if want > self.dock.height():
            self.window.resizeDocks([self.dock], [want], Qt.Orientation.Vertical)

    def _step_changed(self, index: int) -> None:
        self._drop_welcome(index)
        lesson = self.lessons.lessons[index]
        if not self.dock.isVisible():
            self.dock.show()
            self.window.resizeDocks([self.dock], [DOCK_HEIGHT], Qt.Orientation.Vertical)
        self.dock.raise_()
        self.window.show_panel(lesson.panel)
        if lesson.panel in WIDE_PANELS:  # four (or two) plots side by side need room
            dock = self.window.findChild(QDockWidget, f"dock-{lesson.panel}")
            width = int(self.window.width() * WIDE_SHARE)
            self.window.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
        if lesson.mask_mode is not None:
            self.window.mask_view.set_mode(lesson.mask_mode)
        if lesson.pixel is not None:  # its attention comes once the step's run is in
            self.window.mask_view.pixel = lesson_data.lesson_pixel(lesson, self.window.doc.image_size)
        self.window.model_panel.sync_auto()
