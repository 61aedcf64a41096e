"""The Help menu's dialogs: keyboard shortcuts and About (version, paper, loaded weights)."""

from __future__ import annotations

import html
from importlib import metadata

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from mdn_gui.catalog import ModelCatalog
from mdn_gui.controllers.lessons import weights_line

PAPER = "Chen et al., <i>Masked Image Training for Generalizable Deep Image Denoising</i>, CVPR 2023"
# Keys the comparison canvas handles itself (they have no menu entry).
CANVAS_KEYS = (
    ("Move the split divider", "Left / Right (Shift: faster), Home / End"),
    ("Flip A and B in toggle mode", "T or Space"),
    ("Zoom in / out", "+ / - or the mouse wheel"),
)


def version() -> str:
    """The installed version of mdn (``unknown`` when run from a tree that was not installed)."""
    try:
        return metadata.version("mdn")
    except metadata.PackageNotFoundError:
        return "unknown"


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """(what, keys) of every window action that has a shortcut, then the canvas's own keys."""
    rows: dict[str, str] = {}
    for action in window.findChildren(QAction):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if keys:
            rows.setdefault(action.text().replace("&", "").replace("...", ""), keys)
    return sorted(rows.items(), key=lambda row: row[0].lower()) + list(CANVAS_KEYS)


def weights_rows(catalog: ModelCatalog) -> list[tuple[str, str]]:
    """(model, what its weights are and how far trained) for each network the app can run."""
    rows = []
    for choice in ("masked", "baseline", "custom"):
        line = weights_line(catalog, choice)
        if line:
            rows.append((choice, line))
        elif choice != "custom":
            rows.append((choice, "not installed"))
    return rows


def about_html(catalog: ModelCatalog) -> str:
    """The About text."""
    weights = "".join(
        f"<tr><td><b>{html.escape(name)}</b>&nbsp;</td><td>{html.escape(line)}</td></tr>"
        for name, line in weights_rows(catalog)
    )
    return (
        f"<h3>mdn {html.escape(version())}</h3>"
        "<p>The masked-denoising workbench: a before/after viewer for denoisers trained with "
        f"masks, after {PAPER}.</p>"
        f"<p><b>Loaded weights</b></p><table>{weights}</table>"
        "<p>The paper's models were trained for 450k iterations of 64 patches on a GPU; the share "
        "above says how far each of these files got. Official checkpoints open with "
        "File &gt; Open Weights.</p>"
    )


def _dialog(parent: QWidget, title: str, text: str) -> QDialog:
    dialog = QDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    label = QLabel(text, dialog)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setMinimumWidth(460)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(label)
    layout.addWidget(buttons)
    return dialog


def shortcuts_dialog(window: QWidget) -> QDialog:
    """A dialog listing the keyboard shortcuts (not shown yet)."""
    rows = "".join(
        f"<tr><td>{html.escape(what)}&nbsp;&nbsp;</td><td><b>{html.escape(keys)}</b></td></tr>"
        for what, keys in shortcut_rows(window)
    )
    return _dialog(window, "Keyboard shortcuts", f"<table>{rows}</table>")


def about_dialog(window: QWidget, catalog: ModelCatalog) -> QDialog:
    """The About dialog (not shown yet)."""
    return _dialog(window, "About mdn", about_html(catalog))
