"""The recent-files list, kept in QSettings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

MAX_RECENT = 8


class RecentFiles:
    """Most recently opened files first, at most ``limit`` of them."""

    def __init__(self, settings: QSettings, key: str = "recent", limit: int = MAX_RECENT) -> None:
        self.settings, self.key, self.limit = settings, key, limit

    def files(self) -> list[str]:
        value = self.settings.value(self.key, [])
        if isinstance(value, str):  # INI files give a single entry back as a string
            value = [value]
        return [str(v) for v in (value or [])]

    def add(self, path: Path) -> None:
        """Put ``path`` first (once)."""
        name = str(Path(path).resolve())
        files = [name] + [f for f in self.files() if f != name]
        self.settings.setValue(self.key, files[: self.limit])

    def last_folder(self) -> str:
        """Folder of the newest entry, else the home folder (where file dialogs start)."""
        files = self.files()
        return str(Path(files[0]).parent) if files else str(Path.home())
