"""Training data: random augmented crops of clean images, decoded in DataLoader workers.

Every sample is a pure function of (seed, sample index): which image, where the
crop is and which of the 8 flips/rotations, so a resumed run sees exactly the
batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

LOG = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such image folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: holds no images")
    return files


def _imread_quietly(path: Path) -> np.ndarray | None:
    """``cv2.imread`` in colour, without OpenCV's own log lines about broken files (the caller
    warns once, in mdn's words)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.imread(str(path), cv2.IMREAD_COLOR)
    finally:
        cv2.utils.logging.setLogLevel(level)


def augment(patch: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations of a square patch (mode 0..7)."""
    if mode >= 4:
        patch = patch[:, ::-1]
    return np.rot90(patch, k=mode % 4)


class PatchDataset(Dataset):
    """Random ``patch`` x ``patch`` RGB crops; index = global sample number.

    Unreadable or too-small files are skipped with a warning (once each), and the
    sample is taken from the next usable image.

    Args:
        folder: Folder of clean images.
        patch: Crop side.
        seed: Sampling seed.
    """

    def __init__(self, folder: str | Path, patch: int, seed: int) -> None:
        self.files = list_images(folder)
        self.patch = patch
        self.seed = seed
        self._cache: dict[int, np.ndarray | None] = {}

    def __len__(self) -> int:
        return 2**62

    def _image(self, index: int) -> np.ndarray | None:
        if index not in self._cache:
            img = _imread_quietly(self.files[index])
            if img is None or min(img.shape[:2]) < self.patch:
                LOG.warning("skipping training image %s: unreadable or smaller than %d px",
                            self.files[index], self.patch)
                img = None
            else:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            self._cache[index] = img
        return self._cache[index]

    def check_usable(self) -> None:
        """Raise ValueError unless at least one image can be cropped (read in order, stops at
        the first usable one), so a bad folder fails before a run starts."""
        if not any(self._image(i) is not None for i in range(len(self.files))):
            raise ValueError(f"{self.files[0].parent}: no usable training image: all "
                             f"{len(self.files)} are unreadable or smaller than {self.patch} px")

    def __getitem__(self, sample: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, sample])
        start = int(rng.integers(len(self.files)))
        for step in range(len(self.files)):
            img = self._image((start + step) % len(self.files))
            if img is not None:
                break
        else:
            raise RuntimeError(
                f"no usable training image: all are unreadable or smaller than {self.patch} px")
        y = int(rng.integers(img.shape[0] - self.patch + 1))
        x = int(rng.integers(img.shape[1] - self.patch + 1))
        crop = augment(img[y:y + self.patch, x:x + self.patch], int(rng.integers(8)))
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() / 255.0


class SequentialSamples(Sampler[int]):
    """Sample numbers for iterations ``start..`` on one rank of ``world`` processes."""

    def __init__(self, start_iteration: int, batch: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.batch, self.rank, self.world = start_iteration, batch, rank, world

    def __iter__(self):  # noqa: D105
        it = self.start
        while True:
            base = (it * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)
            it += 1

    def __len__(self) -> int:
        return 2**62
