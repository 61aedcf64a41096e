"""Drops an opened weights file that cannot be loaded, so that a Run does not repeat the error.

Without it the file stayed selected: every Run failed the same way, and side B, whose layer
had gone with the failed run, fell back to the noisy image without a word.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from mdn_gui import catalog as cat
from mdn_gui.controllers.session import SessionController
from mdn_gui.jobs import JobFailed, run_channel
from mdn_gui.state import CUSTOM, MODEL_LAYERS


class WeightsGuard(QObject):
    """Watches the runs of the opened weights file.

    Signals:
        dropped (text): the file could not be loaded and is no longer selected; says what now runs.
        unloadable (path): that file's path, so that it leaves the recent-files list.
    """

    dropped = Signal(str)
    unloadable = Signal(str)

    def __init__(self, session: SessionController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        # Connected after the session's own slot: the failed run is already wound up.
        session.backend.worker.failed.connect(self._failed)

    def fallback(self) -> str:
        """The model selected instead: the shipped masked model, else the baseline, else NLM."""
        return next((c for c in ("masked", "baseline") if self.session.catalog.available(c)), "nlm")

    def _failed(self, failed: JobFailed) -> None:
        s = self.session
        if not failed.unloadable or failed.channel != run_channel(CUSTOM):
            return
        path = s.catalog.custom
        if path is None:
            return
        s.catalog.custom = None
        instead = self.fallback()
        if s.doc.model.model == "custom":
            s.set_model(model=instead, weights=None)
        layer = MODEL_LAYERS[instead]
        if s.doc.view.b == CUSTOM:  # B showed the noisy image in the failed run's place
            s.doc.update_view(b=layer if layer in s.doc.layers else s.doc.view.a)
        self.unloadable.emit(str(path))
        self.dropped.emit(
            f"Could not load {path.name}: {failed.message}. It is no longer selected; the "
            f"{cat.LABELS[instead]} is selected instead."
        )
