"""Reading and writing images at the edge of the core.

:func:`read_image` turns a PNG, JPEG, TIFF, BMP or WebP file (8 or 16 bit; grayscale, RGB,
RGBA, palette or CMYK; EXIF orientation applied) into the core's convention: float32 HWC RGB in
[0, 1], with any alpha channel kept aside. The size is checked from the header before any pixel
is decoded. Pillow decodes everything except 16-bit colour PNG/TIFF, which Pillow would reduce to
8 bits; those are decoded with OpenCV.

:func:`write_image` writes atomically (temporary file in the same folder, fsync, rename) and
never overwrites an existing file unless asked to.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from model_core.fileio import pause_if_testing

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageNotFoundError",
    "ImageReadError",
    "LoadedImage",
    "is_grey",
    "read_image",
    "to_float",
    "to_grey",
    "to_uint8",
    "write_image",
]

DEFAULT_MAX_PIXELS = 100_000_000
_EXIF_ORIENTATION = 0x0112
_WRITE_FORMATS = {
    ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg",
    ".bmp": "bmp", ".webp": "webp",
}  # fmt: skip
_SIXTEEN_BIT_FORMATS = ("png", "tiff")
_ALPHA_FORMATS = ("png", "tiff", "webp")
# Pillow's modes of grey files (with or without alpha), and ours for 16-bit grey + alpha.
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "L;16", "LA;16"}) | {
    f"I;16{end}" for end in ("", "B", "L", "N")}
# Errors Pillow's decoders raise on broken files.
_DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error,
    Image.DecompressionBombError,
)  # fmt: skip


class ImageReadError(ValueError):
    """A file could not be read as an image (missing, corrupt, unsupported or too large)."""


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """The image file does not exist (both an :class:`ImageReadError` and a FileNotFoundError)."""


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An image read from disk, in the core's convention.

    Attributes:
        rgb: float32 (H, W, 3) array in [0, 1]; grayscale files are replicated to 3 channels.
        alpha: float32 (H, W) array in [0, 1], or None when the file has no transparency.
        bit_depth: Bits per sample of the file: 8 or 16.
        path: The file the image was read from.
        mode: The file's mode as Pillow names it (e.g. ``"RGB"``, ``"P"``, ``"CMYK"``,
            ``"I;16"``); 16-bit colour files read with OpenCV get ``"RGB;16"``, ``"RGBA;16"``.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    path: Path
    mode: str

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the image."""
        return self.rgb.shape[0], self.rgb.shape[1]

    @functools.cached_property
    def grey(self) -> bool:
        """Whether the image is grey: a grey file, or colour channels that are all equal."""
        return self.mode in _GREY_MODES or is_grey(self.rgb)


# --------------------------------------------------------------------------- grey images


def is_grey(img: np.ndarray) -> bool:
    """Whether an HW, HWx1 or HWC image is grey: one channel, or channels that are all equal.

    mdn's network is RGB; a grey image goes through it as three equal channels and comes back
    as one (:func:`to_grey`), so that grey in is grey out.
    """
    if img.ndim == 2 or img.shape[2] == 1:
        return True
    first = img[..., 0]
    return all(np.array_equal(first, img[..., c]) for c in range(1, img.shape[2]))


def to_grey(img: np.ndarray) -> np.ndarray:
    """The mean of an image's channels as float32 HW (an HW image is returned as float32)."""
    if img.ndim == 2:
        return img.astype(np.float32, copy=False)
    return img.mean(axis=2, dtype=np.float32)


# --------------------------------------------------------------------------- conversions


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Convert a float [0, 1] image to uint8, rounding and clipping.

    Args:
        img: Float image of any shape.

    Returns:
        ``round(clip(img, 0, 1) * 255)`` as uint8.
    """
    return _to_uint(img, np.uint8)


def to_float(arr: np.ndarray) -> np.ndarray:
    """Convert an integer or float image to float32 in [0, 1].

    Args:
        arr: uint8 (divided by 255), uint16 (divided by 65535), bool, or float (values must
            already be in [0, 1]).

    Returns:
        A new float32 array of the same shape.
    """
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(arr).__name__}")
    if arr.dtype in (np.uint8, np.uint16):
        out = arr.astype(np.float32)
        out /= np.float32(np.iinfo(arr.dtype).max)  # in place: no second float copy of a big image
        return out
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and not (0.0 <= float(np.min(arr)) and float(np.max(arr)) <= 1.0):
            raise ValueError("float image values must lie in [0, 1]")
        return arr.astype(np.float32)
    raise TypeError(f"cannot convert dtype {arr.dtype} to a float image; use uint8, uint16")


def _to_uint(img: np.ndarray, dtype: type[np.unsignedinteger]) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(img).__name__}")
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"image must be a float array in [0, 1], got dtype {img.dtype}")
    if np.isnan(img).any():
        raise ValueError("image contains NaN values")
    peak = float(np.iinfo(dtype).max)
    return np.round(np.clip(img, 0.0, 1.0) * peak).astype(dtype)


# --------------------------------------------------------------------------- reading


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Read an image file into float32 RGB [0, 1] (and alpha), applying EXIF orientation.

    Supports PNG, JPEG, TIFF, BMP and WebP (and whatever else Pillow opens), 8 and 16 bit,
    grayscale, RGB, RGBA, palette and CMYK. Only the first frame of multi-frame files is read.

    Args:
        path: File to read.
        max_pixels: Largest accepted width * height, checked from the header before decoding.
            Pillow's own decompression-bomb limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``, about
            179 megapixels by default) still applies above that.

    Returns:
        The decoded image.

    Raises:
        ImageNotFoundError: If the file does not exist.
        ImageReadError: If the file is not a readable image, is corrupt, has zero size, is
            larger than ``max_pixels`` or has an unsupported pixel format.
    """
    path = Path(path)
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")
    with _open_pillow(path) as im:
        _check_dimensions(im.size, max_pixels, path)
        try:
            if _is_16bit_colour(im, path):
                rgb, alpha, mode = _decode_opencv(path, im)
                bit_depth = 16
            else:
                rgb, alpha, bit_depth = _decode_pillow(im, path)
                mode = im.mode
        except ImageReadError:
            raise
        except _DECODE_ERRORS as exc:
            reason = f"corrupt or truncated ({exc})"
            raise ImageReadError(f"cannot read image '{path}': {reason}") from exc
    return LoadedImage(rgb=rgb, alpha=alpha, bit_depth=bit_depth, path=path, mode=mode)


@contextlib.contextmanager
def _open_pillow(path: Path) -> Iterator[Image.Image]:
    """Open ``path`` with Pillow (header only), turning every failure into an ImageReadError."""
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit; Pillow's warning below its hard limit is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except FileNotFoundError as exc:
        raise ImageNotFoundError(f"cannot read image '{path}': no such file") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"cannot read image '{path}': not a recognised image format") from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"cannot read image '{path}': too large ({exc})") from exc
    except IsADirectoryError as exc:
        raise ImageReadError(f"cannot read image '{path}': it is a folder") from exc
    except _DECODE_ERRORS as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ImageReadError(f"cannot read image '{path}': {reason}") from exc
    with im:
        yield im


def _check_dimensions(size: tuple[int, int], max_pixels: int, path: Path) -> None:
    """Reject a zero-size image or one with more than ``max_pixels`` pixels."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageReadError(f"cannot read image '{path}': it has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageReadError(
            f"cannot read image '{path}': {width}x{height} = {width * height:,} pixels "
            f"exceeds the limit of {max_pixels:,} pixels"
        )


def _is_16bit_colour(im: Image.Image, path: Path) -> bool:
    """Whether ``im`` is a 16-bit colour (or grey + alpha) PNG/TIFF that Pillow would truncate."""
    if im.mode not in ("RGB", "RGBA", "LA"):
        return False
    if im.format == "PNG":
        with open(path, "rb") as f:
            header = f.read(25)  # signature (8), IHDR length + type (8), width, height, depth
        return len(header) == 25 and header[24] == 16
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, 8)
        return 16 in (bits if isinstance(bits, tuple) else (bits,))
    return False


def _decode_pillow(im: Image.Image, path: Path) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Decode with Pillow; return (rgb, alpha or None, bit depth)."""
    im = ImageOps.exif_transpose(im) if _EXIF_ORIENTATION in im.getexif() else im
    if im.mode.startswith("I;16") or im.mode == "I":
        gray = np.asarray(im).astype(np.float32)
        if gray.size and (gray.min() < 0 or gray.max() > 65535):
            reason = "integer samples outside 0-65535 are unsupported"
            raise ImageReadError(f"cannot read image '{path}': {reason}")
        gray /= np.float32(65535.0)
        return np.repeat(gray[..., None], 3, axis=2), None, 16
    if im.mode == "F":
        raise ImageReadError(f"cannot read image '{path}': floating-point images unsupported")
    target = "RGBA" if im.has_transparency_data else "RGB"
    # Each Pillow copy of a 40-megapixel image is 120 MB: convert only where the mode differs.
    arr = to_float(np.asarray(im if im.mode == target else im.convert(target)))
    alpha = arr[..., 3].copy() if target == "RGBA" else None
    return np.ascontiguousarray(arr[..., :3]), alpha, 8


def _decode_opencv(path: Path, im: Image.Image) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Decode a 16-bit colour PNG/TIFF with OpenCV; return (rgb, alpha or None, mode)."""
    arr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise ImageReadError(f"cannot read image '{path}': OpenCV failed to decode 16-bit data")
    arr = _apply_orientation(arr, int(im.getexif().get(_EXIF_ORIENTATION, 1)))
    arr = to_float(arr)
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2), None, "L;16"
    rgb = np.ascontiguousarray(arr[..., 2::-1])
    if arr.shape[2] == 4:
        return rgb, arr[..., 3].copy(), "RGBA;16"
    return rgb, None, "RGB;16"


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an HW or HWC array, as ImageOps.exif_transpose does."""
    swap = (1, 0, 2)[: arr.ndim]
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(swap),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(swap),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(arr)) if op else arr


# --------------------------------------------------------------------------- writing


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    overwrite: bool = False,
    quality: int = 95,
) -> Path:
    """Write a float [0, 1] image atomically; the format follows the file extension.

    The image is encoded in memory, written to a temporary file in the destination folder,
    fsynced and renamed into place, so the destination either does not change or holds the
    complete new file.

    Args:
        path: Destination; extension .png, .tif/.tiff, .jpg/.jpeg, .bmp or .webp.
        rgb: Float image in [0, 1] (values outside are clipped): HWC RGB, HWx1 or HW grayscale.
        alpha: Optional float (H, W) alpha in [0, 1]; PNG, TIFF and WebP only.
        bit_depth: 8, or 16 for PNG and TIFF.
        overwrite: Replace an existing file instead of raising FileExistsError.
        quality: JPEG/WebP quality 1-100 (WebP: 101 means lossless).

    Returns:
        The path written.

    Raises:
        ValueError: On an unsupported extension, bit depth, shape or alpha.
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
        OSError: If writing fails (e.g. disk full); no partial or temporary file is left.
    """
    path = Path(path)
    fmt = _write_format(path, bit_depth)
    if not overwrite and path.exists():
        raise FileExistsError(f"refusing to overwrite existing file '{path}' (overwrite=False)")
    data = _encode(_to_opencv_array(rgb, alpha, bit_depth, fmt, path), fmt, quality, path)
    try:
        _atomic_write(path, data, overwrite)
    except FileExistsError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        message = f"could not write image '{path}': {reason}; nothing was written"
        raise OSError(exc.errno, message) from exc
    return path


def _write_format(path: Path, bit_depth: int) -> str:
    """Return the format name for ``path``'s extension, checking that it allows ``bit_depth``."""
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot write '{path}': unsupported extension {path.suffix!r}; "
            f"use one of {', '.join(_WRITE_FORMATS)}"
        )
    if bit_depth not in (8, 16) or (bit_depth == 16 and fmt not in _SIXTEEN_BIT_FORMATS):
        raise ValueError(f"cannot write '{path}': bit_depth must be 8, or 16 for PNG/TIFF only")
    return fmt


def _to_opencv_array(
    rgb: np.ndarray, alpha: np.ndarray | None, bit_depth: int, fmt: str, path: Path
) -> np.ndarray:
    """Validate and convert to an integer BGR(A) or grayscale array for OpenCV."""
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    pixels = _to_uint(rgb, dtype)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3) or not pixels.size:
        raise ValueError(f"cannot write '{path}': need an HWC RGB or HW image, got {rgb.shape}")
    if pixels.ndim == 3:
        pixels = pixels[..., ::-1]
    if alpha is None:
        return np.ascontiguousarray(pixels)
    if fmt not in _ALPHA_FORMATS:
        raise ValueError(f"cannot write '{path}': {fmt} has no alpha channel; use PNG/TIFF/WebP")
    if alpha.shape != pixels.shape[:2]:
        raise ValueError(f"cannot write '{path}': alpha shape {alpha.shape} != {pixels.shape[:2]}")
    colour = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(np.dstack([colour, _to_uint(alpha, dtype)]))


def _encode(pixels: np.ndarray, fmt: str, quality: int, path: Path) -> bytes:
    """Encode with OpenCV into the bytes of a ``fmt`` file."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 101:
        raise ValueError(f"quality must be an int in 1-100 (101: lossless WebP), got {quality!r}")
    params = {
        "jpeg": [cv2.IMWRITE_JPEG_QUALITY, min(quality, 100)],
        "webp": [cv2.IMWRITE_WEBP_QUALITY, quality],
    }.get(fmt, [])
    ok, buf = cv2.imencode("." + ("tif" if fmt == "tiff" else fmt), pixels, params)
    if not ok:
        raise ValueError(f"cannot write '{path}': OpenCV failed to encode it as {fmt}")
    return buf.tobytes()


def _atomic_write(path: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to a temporary sibling of ``path``, fsync it, then move it into place."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = None
    try:  # from the start: a signal right after the open must not leave the file behind
        fd = os.open(tmp, flags, 0o666)  # the umask applies, as for any new file
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view[: 1 << 20]) :]
            pause_if_testing(path)
            os.fsync(fd)
        finally:
            os.close(fd)
        _publish(tmp, path, overwrite)
    except FileExistsError:
        if fd is not None:  # else the name was taken: not our file to remove
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move ``tmp`` to ``path``; without ``overwrite``, fail if ``path`` appeared meanwhile."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic "create if absent"
    except FileExistsError:
        raise FileExistsError(
            f"refusing to overwrite existing file '{path}' (overwrite=False)"
        ) from None
    except OSError:  # hard links unsupported here: check, then rename
        if path.exists():
            raise FileExistsError(
                f"refusing to overwrite existing file '{path}' (overwrite=False)"
            ) from None
        os.replace(tmp, path)
        return
    with contextlib.suppress(OSError):
        tmp.unlink()


def _fsync_directory(folder: Path) -> None:
    """Make the rename durable where the platform allows fsync on a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
