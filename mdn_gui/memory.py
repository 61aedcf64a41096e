"""How large an image the workbench can open on this machine.

The core's reader accepts up to :data:`~model_core.imageio.DEFAULT_MAX_PIXELS`, but the
workbench keeps many copies of an image (clean, noisy, results, their Qt images, the
float64 work of SSIM): about 150 bytes per pixel were measured (a 6000x4000 photo took
3.7 GB). So the GUI refuses images that would not fit in the memory available now.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import psutil
from PIL import Image

from model_core.imageio import DEFAULT_MAX_PIXELS, ImageReadError, LoadedImage, read_image

# Bytes one image pixel costs in the workbench, with a margin over the measured ~150.
BYTES_PER_PIXEL = 200
# What Pillow may raise on a file it cannot open; read_image then reports it properly.
_HEADER_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def available_memory() -> int:
    """Bytes of memory available to new allocations now."""
    return int(psutil.virtual_memory().available)


def max_image_pixels(available: int | None = None) -> int:
    """Largest width * height the workbench opens with ``available`` bytes (default: now)."""
    free = available_memory() if available is None else available
    return max(1, min(DEFAULT_MAX_PIXELS, free // BYTES_PER_PIXEL))


def read_image_that_fits(path: str | Path) -> LoadedImage:
    """Read an image file, refusing one too large for the memory available.

    Raises:
        ImageReadError: If the file cannot be read or is too large (the message names its
            size and the limit).
    """
    limit = check_fits(Path(path), header_size(Path(path)))
    return read_image(path, max_pixels=limit)


def check_fits(path: Path, size: tuple[int, int] | None) -> int:
    """Refuse an image of ``size`` (width, height) too large for the memory available now.

    Returns:
        The largest number of pixels the workbench opens now.

    Raises:
        ImageReadError: If it is too large (the message names its size and the limit).
    """
    available = available_memory()
    limit = max_image_pixels(available)
    if size is not None and size[0] * size[1] > limit and limit < DEFAULT_MAX_PIXELS:
        width, height = size
        raise ImageReadError(
            f"{path.name} is {width}x{height} ({width * height / 1e6:.3g} megapixels); with "
            f"{available / 2**30:.1f} GB of memory available the workbench opens at most "
            f"{limit / 1e6:.3g} megapixels (about {BYTES_PER_PIXEL} bytes a pixel)"
        )
    return limit


# EXIF orientations that turn the picture a quarter: read_image swaps its width and height.
_QUARTER_TURNS = (5, 6, 7, 8)


def _orientation(im: Image.Image) -> int | None:
    """The EXIF orientation tag; None when absent or unreadable (a truncated file's is)."""
    try:
        return im.getexif().get(0x0112)
    except _HEADER_ERRORS:
        return None


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as displayed, from the file's header (with its EXIF orientation), or
    None when Pillow cannot open it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own limit
            with Image.open(path) as im:
                width, height = im.size
                return (height, width) if _orientation(im) in _QUARTER_TURNS else (width, height)
    except _HEADER_ERRORS:
        return None
