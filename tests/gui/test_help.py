"""The Help menu: the tour, the keyboard shortcuts and About."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QDialog

from mdn_gui.catalog import ModelCatalog
from mdn_gui.views.help import about_dialog, about_html, shortcut_rows, shortcuts_dialog, version
from mdn_gui.views.main_window import MainWindow


def test_help_menu_lists_the_tour_shortcuts_and_about(window: MainWindow) -> None:
    texts = [a.text().replace("&", "") for a in window.tour.help_menu.actions() if a.text()]
    assert texts == ["Tour", "Previous Lesson", "Next Lesson", "Keyboard Shortcuts", "About mdn"]
    rows = dict(shortcut_rows(window))
    assert rows["Tour"] == "F1" and rows["Next Lesson"] == "Alt+Right" and rows["Cancel"] == "Esc"
    assert rows["Run"] == "Ctrl+R" and "Flip A and B in toggle mode" in rows


def test_about_says_version_paper_and_how_far_the_loaded_weights_were_trained(
    tmp_path: Path, tiny_weights: dict[str, Path]
) -> None:
    trained = tmp_path / "trained.safetensors"
    trained.write_bytes(tiny_weights["masked"].read_bytes())
    card = {"name": "trained", "iterations": 900, "patches_seen": 7200}
    card["train_config"] = {"model_size": "tiny"}
    trained.with_suffix(".json").write_text(json.dumps(card))
    text = about_html(ModelCatalog(masked=trained, baseline=tiny_weights["baseline"]))
    assert version() in text and "CVPR 2023" in text
    assert "trained.safetensors, tiny size, trained 900 iterations" in text
    assert "baseline.safetensors (its model card does not say how far it was trained)" in text
    assert "custom" not in text  # no weights file opened


def test_dialogs_open_and_close_without_leaking(qtbot, window: MainWindow) -> None:
    for dialog in (shortcuts_dialog(window), about_dialog(window, window.session.catalog)):
        assert isinstance(dialog, QDialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        dialog.reject()
