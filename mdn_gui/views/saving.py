"""Saving layers and exporting the comparison from the main window."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtWidgets import QFileDialog

from mdn_gui.state import CLEAN, NOISY
from mdn_gui.views.actions import fill_menu
from model_core.imageio import is_grey, to_grey, write_image

SAVE_FILTERS = {
    "PNG, 8 bit (*.png)": 8,
    "PNG, 16 bit (*.png)": 16,
    "TIFF, 8 bit (*.tif)": 8,
    "TIFF, 16 bit (*.tif)": 16,
}


class SavingMixin:
    """The main window's saving: needs ``doc``, ``compare``, ``actions_``, ``show_error``,
    ``hide_error``, ``statusBar`` and ``_last_folder`` from the window it is mixed into."""

    def save_layer(self, key: str, path: str | Path, bit_depth: int = 8) -> Path:
        """Write a layer (the file dialog already asked about overwriting).

        Raises:
            ValueError: If the layer is still being computed (it holds noisy tiles).
        """
        layer = self.doc.layers[key]
        if layer.partial:
            raise ValueError(f"{layer.label} is still running; save it when the run has finished")
        image = to_grey(layer.image) if self._source_is_grey() else layer.image
        return write_image(path, image, bit_depth=bit_depth, overwrite=True)

    def _source_is_grey(self) -> bool:
        """Whether the opened image is grey: its layers are then saved as grey (one channel).

        The network is RGB and tints a grey image a little; the mean of its channels is kept.
        """
        layer = self.doc.layers.get(CLEAN if self.doc.has_clean else NOISY)
        return layer is not None and is_grey(layer.image)

    def save_layer_dialog(self, key: str | None) -> None:
        key = key or self.doc.shown_pair()[1]
        if key is None:
            return
        name = self.doc.layers[key].label.split(" ")[0]
        path, chosen = QFileDialog.getSaveFileName(
            self,
            f"Save {self.doc.layers[key].label}",
            str(Path(self._last_folder()) / f"{name}.png"),
            ";;".join(SAVE_FILTERS),
        )
        target = self._save_target(path, chosen)
        if target is not None:
            self._write(lambda: self.save_layer(key, target, SAVE_FILTERS.get(chosen, 8)), target)

    def export_comparison(self, path: str | Path) -> Path:
        """Write the comparison as shown (mode, divider) at full image resolution.

        Raises:
            ValueError: If there is nothing to export or a layer shown is still being computed.
        """
        running = [k for k in self.doc.shown_pair() if k is not None and self.doc.layers[k].partial]
        if running:
            label = self.doc.layers[running[0]].label
            raise ValueError(f"{label} is still running; export when the run has finished")
        image = self.compare.export_array().astype(np.float32) / np.float32(255.0)
        if self.doc.view.mode != "diff" and self._source_is_grey():  # the heatmap keeps its colours
            image = to_grey(image)
        return write_image(path, image, overwrite=True)

    def export_dialog(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(
            self,
            "Export comparison",
            str(Path(self._last_folder()) / "comparison.png"),
            "PNG (*.png);;TIFF (*.tif);;JPEG (*.jpg)",
        )
        target = self._save_target(path, chosen)
        if target is not None:
            self._write(lambda: self.export_comparison(target), target)

    def _save_target(self, path: str, chosen: str) -> Path | None:
        """The file to write: ``path``, with the chosen filter's extension when it has none.

        The dialog asked about replacing ``path`` only, so a file that exists under the
        completed name is reported and kept (None).
        """
        if not path:
            return None
        target = Path(path)
        suffix = re.search(r"\*(\.\w+)", chosen)
        if target.suffix or suffix is None:
            return target
        target = target.with_name(target.name + suffix.group(1))
        if target.exists():
            self.show_error(f"Could not save {target.name}: it exists (type the full name to replace it)")
            return None
        return target

    def _write(self, write: Any, path: str | Path) -> None:
        try:
            written = write()
        except (OSError, ValueError) as exc:
            self.show_error(f"Could not save {Path(path).name}: {exc}")
            return
        self.hide_error()  # an earlier failure to save is settled
        self.statusBar().showMessage(f"Saved {written}", 8000)

    def _fill_save_menu(self) -> None:
        items = [
            (self.doc.layers[k].label, lambda k=k: self.save_layer_dialog(k)) for k in self.doc.ordered_keys()
        ]
        fill_menu(self.actions_.save_menu, items, "(no layers)")
