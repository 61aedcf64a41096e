"""The one place where numpy images become Qt images."""

from __future__ import annotations

import functools

import numpy as np
from PySide6.QtGui import QImage

from mdn_gui.compose import to_uint8


def to_qimage(image: np.ndarray) -> QImage:
    """Convert an image to a QImage that owns its pixels.

    Args:
        image: float32 (H, W, 3) RGB in [0, 1], uint8 (H, W, 3), or float/uint8 (H, W) grey.

    Returns:
        An RGB888 or Grayscale8 QImage.
    """
    arr = np.ascontiguousarray(to_uint8(image))
    if arr.ndim == 2:
        fmt, per_pixel = QImage.Format.Format_Grayscale8, 1
    elif arr.ndim == 3 and arr.shape[2] == 3:
        fmt, per_pixel = QImage.Format.Format_RGB888, 3
    else:
        raise ValueError(f"cannot show an image of shape {image.shape}")
    h, w = arr.shape[:2]
    # QImage only borrows the buffer; copy() gives it memory of its own.
    return QImage(arr.data, w, h, w * per_pixel, fmt).copy()


def from_qimage(image: QImage) -> np.ndarray:
    """Copy a QImage (any format) into a uint8 (H, W, 3) RGB array."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = rgb.height(), rgb.width()
    rows = np.frombuffer(rgb.constBits(), np.uint8, count=rgb.bytesPerLine() * h)
    # Qt pads each row to 4 bytes: drop the padding, then copy out of Qt's buffer.
    return rows.reshape(h, rgb.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


@functools.cache
def lookup_table(name: str = "inferno") -> np.ndarray:
    """(256, 3) uint8 colours of a pyqtgraph colour map (cached; treat as read-only)."""
    import pyqtgraph as pg

    lut = pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False)
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    lut.setflags(write=False)
    return lut


def colorbar_qimage(name: str = "inferno", height: int = 256) -> QImage:
    """A vertical colour-bar strip (high values at the top), 1 pixel wide."""
    lut = lookup_table(name)
    index = np.linspace(len(lut) - 1, 0, height).round().astype(np.intp)
    return to_qimage(lut[index][:, None, :])
