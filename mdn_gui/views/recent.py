"""The recent-files list, kept in QSettings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

MAX_RECENT = 8
TAGS = ("noisy", "weights")


class RecentFiles:
    """Most recently opened files first, at most ``limit`` of them."""

    def __init__(self, settings: QSettings, key: str = "recent", limit: int = MAX_RECENT) -> None:
        self.settings, self.key, self.limit = settings, key, limit

    def files(self) -> list[str]:
        return self._list(self.key)

    def tagged(self, tag: str) -> set[str]:
        """Entries opened as ``noisy`` photos or as ``weights`` (they reopen that way)."""
        return set(self._list(f"{self.key}_{tag}"))

    def add(self, path: Path, *, tag: str = "") -> None:
        """Put ``path`` first (once), with how it was opened: ``noisy``, ``weights`` or ""."""
        name = str(Path(path).resolve())
        files = ([name] + [f for f in self.files() if f != name])[: self.limit]
        self.settings.setValue(self.key, files)
        for kind in TAGS:
            marked = (self.tagged(kind) - {name}) | ({name} if tag == kind else set())
            self.settings.setValue(f"{self.key}_{kind}", [f for f in files if f in marked])

    def remove(self, path: str | Path) -> None:
        """Forget ``path`` (a weights file that opened but could not be loaded), tags and all."""
        name = str(Path(path).resolve())
        files = [f for f in self.files() if f != name]
        self.settings.setValue(self.key, files)
        for kind in TAGS:  # in the list's order, as add() keeps them
            marked = self.tagged(kind)
            self.settings.setValue(f"{self.key}_{kind}", [f for f in files if f in marked])

    def _list(self, key: str) -> list[str]:
        value = self.settings.value(key, [])
        if isinstance(value, str):  # INI files give a single entry back as a string
            value = [value]
        return [str(v) for v in (value or []) if v]

    def last_folder(self) -> str:
        """Folder of the newest entry, else the home folder (where file dialogs start)."""
        files = self.files()
        return str(Path(files[0]).parent) if files else str(Path.home())
