"""Menus, toolbar and keyboard shortcuts of the main window."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import qtawesome as qta
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar, QToolButton

from mdn_gui.samples import SAMPLES
from mdn_gui.views.compare_view import MODES
from mdn_gui.views.theme import THEMES

if TYPE_CHECKING:
    from mdn_gui.views.main_window import MainWindow

MODE_SHORTCUTS = {"split": "Ctrl+1", "side": "Ctrl+2", "toggle": "Ctrl+3", "diff": "Ctrl+4"}


def make_action(
    parent: Any,
    text: str,
    slot: Callable[[], Any],
    *,
    icon: str | None = None,
    shortcut: str | QKeySequence.StandardKey | None = None,
    tip: str = "",
) -> QAction:
    """A QAction with an icon, a shortcut (shown in its tooltip) and a slot."""
    action = QAction(text, parent)
    if icon:
        action.setIcon(qta.icon(icon))
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    action.setToolTip(f"{tip or text.replace('...', '')}" + (f" ({keys})" if keys else ""))
    action.setStatusTip(tip or text)
    action.triggered.connect(lambda _=False: slot())
    return action


class WindowActions:
    """Every action of the window, built once and placed in the menus and the toolbar."""

    def __init__(self, w: MainWindow) -> None:
        s, view = w.session, w.compare
        std = QKeySequence.StandardKey
        self.open = make_action(
            w,
            "&Open Image...",
            w.open_image_dialog,
            icon="fa6s.folder-open",
            shortcut=std.Open,
            tip="Open a clean image; noise is added to it",
        )
        self.open_noisy = make_action(
            w,
            "Open &Noisy Photo...",
            lambda: w.open_image_dialog(noisy=True),
            icon="fa6s.camera",
            shortcut="Ctrl+Shift+O",
            tip="Open a real noisy photo (no clean reference)",
        )
        self.open_result = make_action(
            w,
            "Open &Result Layer...",
            w.open_result_dialog,
            icon="fa6s.layer-group",
            tip="Open another denoiser's output to compare",
        )
        self.open_weights = make_action(
            w,
            "Open &Weights...",
            w.open_weights_dialog,
            icon="fa6s.weight-hanging",
            shortcut="Ctrl+Shift+W",
            tip="Use a .safetensors or official .pth file",
        )
        self.save = make_action(
            w,
            "&Save Layer B...",
            lambda: w.save_layer_dialog(None),
            icon="fa6s.floppy-disk",
            shortcut=std.Save,
            tip="Save the image shown as B (8 or 16 bit)",
        )
        self.export = make_action(
            w,
            "&Export Comparison...",
            w.export_dialog,
            icon="fa6s.file-export",
            shortcut="Ctrl+E",
            tip="Save the current comparison as an image",
        )
        self.quit = make_action(w, "&Quit", w.close, shortcut=std.Quit)
        self.run = make_action(
            w,
            "&Run",
            lambda: s.run_now(),
            icon="fa6s.play",
            shortcut="Ctrl+R",
            tip="Denoise with the selected model",
        )
        self.run_all = make_action(
            w,
            "Run &All",
            s.run_all,
            icon="fa6s.forward",
            shortcut="Ctrl+Shift+R",
            tip="Run every available denoiser",
        )
        self.cancel = make_action(
            w, "&Cancel", w.cancel, icon="fa6s.stop", shortcut="Esc", tip="Stop the running job"
        )
        self.modes: dict[str, QAction] = {}
        group = QActionGroup(w)
        for mode, (label, icon, tip) in MODES.items():
            action = make_action(
                w,
                label,
                lambda m=mode: w.session_view(mode=m),
                icon=icon,
                shortcut=MODE_SHORTCUTS[mode],
                tip=tip,
            )
            action.setCheckable(True)
            group.addAction(action)
            self.modes[mode] = action
        self.fit = make_action(w, "&Fit", view.canvas.fit, icon="fa6s.expand", shortcut="Ctrl+0")
        self.actual = make_action(
            w,
            "Actual &Pixels (1:1)",
            view.canvas.actual_size,
            icon="fa6s.magnifying-glass",
            shortcut="Ctrl+Alt+0",
        )
        self.swap = make_action(
            w, "S&wap A and B", view.swap, icon="fa6s.right-left", shortcut="Ctrl+Shift+X"
        )
        self.flip = make_action(
            w, "Flip A/B (toggle mode)", view.canvas.flip, icon="fa6s.repeat", shortcut="Ctrl+T"
        )
        self.themes: dict[str, QAction] = {}
        theme_group = QActionGroup(w)
        for theme in THEMES:
            action = make_action(w, theme.capitalize(), lambda t=theme: w.set_theme(t))
            action.setCheckable(True)
            theme_group.addAction(action)
            self.themes[theme] = action
        self.reset_layout = make_action(w, "Reset &Layout", w.reset_layout)

    def build_menus(self, w: MainWindow) -> None:
        bar = w.menuBar()
        file = bar.addMenu("&File")
        for action in (self.open, self.open_noisy):
            file.addAction(action)
        self.samples_menu = file.addMenu(qta.icon("fa6s.image"), "Open &Sample")
        for name in SAMPLES:
            self.samples_menu.addAction(make_action(w, name, lambda n=name: w.open_sample(n)))
        self.recent_menu = file.addMenu("Open Re&cent")
        for action in (self.open_result, self.open_weights):
            file.addAction(action)
        file.addSeparator()
        file.addAction(self.save)
        self.save_menu = file.addMenu("Save La&yer")
        file.addAction(self.export)
        file.addSeparator()
        file.addAction(self.quit)
        view = bar.addMenu("&View")
        for action in (*self.modes.values(), None, self.fit, self.actual, self.swap, self.flip, None):
            view.addAction(action) if action is not None else view.addSeparator()
        theme = view.addMenu("&Theme")
        for action in self.themes.values():
            theme.addAction(action)
        self.docks_menu = view.addMenu("&Panels")
        view.addAction(self.reset_layout)
        run = bar.addMenu("&Run")
        for action in (self.run, self.run_all, self.cancel):
            run.addAction(action)

    def build_toolbar(self, w: MainWindow) -> QToolBar:
        bar = QToolBar("Main", w)
        bar.setObjectName("main-toolbar")
        bar.addAction(self.open)
        samples = QToolButton(bar)
        samples.setIcon(qta.icon("fa6s.image"))
        samples.setToolTip("Open a built-in sample image")
        samples.setMenu(self.samples_menu)
        samples.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addWidget(samples)
        for action in (
            self.open_weights,
            self.save,
            self.export,
            None,
            self.run,
            self.run_all,
            self.cancel,
            None,
            *self.modes.values(),
            None,
            self.fit,
            self.actual,
        ):
            bar.addAction(action) if action is not None else bar.addSeparator()
        return bar


def fill_menu(menu: QMenu, items: list[tuple[str, Callable[[], Any]]], empty: str) -> None:
    """Replace a menu's entries (e.g. recent files) with ``items``."""
    menu.clear()
    for text, slot in items:
        menu.addAction(text).triggered.connect(lambda _=False, f=slot: f())
    if not items:
        menu.addAction(empty).setEnabled(False)
