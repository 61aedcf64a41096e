"""Tests of model_core.imageio: formats, bit depths, modes, orientation, failures, atomicity."""

from __future__ import annotations

import errno
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from model_core.imageio import (
    ImageNotFoundError,
    ImageReadError,
    LoadedImage,
    read_image,
    to_float,
    to_uint8,
    write_image,
)

RNG = np.random.default_rng(0)
U8 = RNG.integers(0, 256, (24, 33, 3), dtype=np.uint8)
U16 = RNG.integers(0, 65536, (24, 33, 3), dtype=np.uint16)


def smooth_rgb(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    return np.dstack([x, y, 0.5 * (x + y)]).astype(np.float32)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def crafted_png(width: int, height: int, idat: bytes = b"", extra: bytes = b"") -> bytes:
    """A PNG whose header claims width x height (8-bit RGB), followed by the given chunks."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + extra
        + png_chunk(b"IDAT", zlib.compress(idat))
        + png_chunk(b"IEND", b"")
    )


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".bmp", ".PNG"])
def test_8bit_round_trip_exact(tmp_path: Path, ext: str) -> None:
    path = write_image(tmp_path / f"a{ext}", to_float(U8))
    img = read_image(path)
    assert isinstance(img, LoadedImage)
    assert img.rgb.dtype == np.float32 and img.rgb.flags.c_contiguous
    assert img.bit_depth == 8 and img.alpha is None and img.path == path
    assert img.shape == U8.shape[:2]
    np.testing.assert_array_equal(to_uint8(img.rgb), U8)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip_exact(tmp_path: Path, ext: str) -> None:
    path = write_image(tmp_path / f"a{ext}", to_float(U16), bit_depth=16)
    img = read_image(path)
    assert img.bit_depth == 16 and img.mode == "RGB;16"
    np.testing.assert_array_equal(np.round(img.rgb * 65535).astype(np.uint16), U16)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_alpha_round_trip(tmp_path: Path, ext: str) -> None:
    alpha = RNG.integers(0, 65536, U16.shape[:2], dtype=np.uint16)
    path = write_image(tmp_path / f"a{ext}", to_float(U16), alpha=to_float(alpha), bit_depth=16)
    img = read_image(path)
    assert img.bit_depth == 16 and img.alpha is not None
    np.testing.assert_array_equal(np.round(img.alpha * 65535).astype(np.uint16), alpha)
    np.testing.assert_array_equal(np.round(img.rgb * 65535).astype(np.uint16), U16)


def test_16bit_grayscale_from_pillow(tmp_path: Path) -> None:
    gray = RNG.integers(0, 65536, (20, 30), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g.png")  # mode I;16
    img = read_image(tmp_path / "g.png")
    assert img.bit_depth == 16 and img.mode.startswith("I;16")
    assert img.rgb.shape == (20, 30, 3)
    for c in range(3):
        np.testing.assert_array_equal(np.round(img.rgb[..., c] * 65535).astype(np.uint16), gray)


def test_grayscale_8bit_and_writer_grayscale(tmp_path: Path) -> None:
    Image.fromarray(U8[..., 0]).save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.mode == "L" and img.rgb.shape == (*U8.shape[:2], 3)
    assert np.array_equal(img.rgb[..., 0], img.rgb[..., 2])
    np.testing.assert_array_equal(to_uint8(img.rgb[..., 1]), U8[..., 0])
    write_image(tmp_path / "w.png", to_float(U8[..., 0]), bit_depth=16)
    assert read_image(tmp_path / "w.png").bit_depth == 16


def test_rgba_alpha_preserved(tmp_path: Path) -> None:
    alpha = RNG.integers(0, 256, U8.shape[:2], dtype=np.uint8)
    Image.fromarray(np.dstack([U8, alpha]), "RGBA").save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.mode == "RGBA" and img.alpha is not None and img.alpha.dtype == np.float32
    np.testing.assert_array_equal(to_uint8(img.alpha), alpha)
    np.testing.assert_array_equal(to_uint8(img.rgb), U8)  # colour not premultiplied
    write_image(tmp_path / "w.webp", img.rgb, alpha=img.alpha, quality=101)  # lossless
    again = read_image(tmp_path / "w.webp")
    np.testing.assert_array_equal(to_uint8(again.alpha), alpha)


def test_palette_with_transparency(tmp_path: Path) -> None:
    indices = (np.arange(16 * 16).reshape(16, 16) % 4).astype(np.uint8)
    pal = Image.fromarray(indices, "P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0])
    pal.save(tmp_path / "p.png", transparency=3)
    img = read_image(tmp_path / "p.png")
    assert img.mode == "P"
    np.testing.assert_array_equal(to_uint8(img.rgb[0, :3]), [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    assert img.alpha is not None
    np.testing.assert_array_equal(img.alpha == 0, indices == 3)
    pal.save(tmp_path / "opaque.png")
    assert read_image(tmp_path / "opaque.png").alpha is None


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_cmyk_converted_to_rgb(tmp_path: Path, ext: str) -> None:
    cmyk = Image.new("CMYK", (32, 16), (0, 255, 255, 0))  # pure red
    cmyk.save(tmp_path / f"c{ext}")
    img = read_image(tmp_path / f"c{ext}")
    assert img.mode == "CMYK" and img.rgb.shape == (16, 32, 3)
    np.testing.assert_allclose(img.rgb.mean(axis=(0, 1)), [1.0, 0.0, 0.0], atol=0.02)


def test_jpeg_and_webp_lossy_close(tmp_path: Path) -> None:
    rgb = smooth_rgb()
    for name in ("a.jpg", "a.jpeg", "a.webp"):
        out = read_image(write_image(tmp_path / name, rgb, quality=95)).rgb
        assert out.shape == rgb.shape
        assert float(np.abs(out - rgb).mean()) < 0.01


# --------------------------------------------------------------------------- EXIF orientation


def exif(orientation: int) -> Image.Exif:
    info = Image.Exif()
    info[0x0112] = orientation
    return info


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    arr = np.zeros((40, 80, 3), np.uint8)  # 80 wide, 40 tall
    arr[:20, :40] = (255, 0, 0)  # red top-left quadrant
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=exif(6), quality=95)
    img = read_image(tmp_path / "r.jpg")
    # Orientation 6: rotate 90 degrees clockwise to display; top-left goes to top-right.
    assert img.rgb.shape == (80, 40, 3)
    assert img.rgb[:40, 20:, 0].mean() > 0.9
    assert img.rgb[:40, :20, 0].mean() < 0.1 and img.rgb[40:, :, 0].mean() < 0.1


def insert_png_chunk(data: bytes, kind: bytes, payload: bytes) -> bytes:
    end_of_ihdr = 8 + 8 + 13 + 4
    return data[:end_of_ihdr] + png_chunk(kind, payload) + data[end_of_ihdr:]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_16bit_matches_pillow(tmp_path: Path, orientation: int) -> None:
    small = U16[:6, :9]
    ok, buf = cv2.imencode(".png", small[..., ::-1])
    assert ok
    exif_payload = exif(orientation).tobytes()[6:]  # eXIf holds the TIFF block without "Exif\0\0"
    (tmp_path / "o16.png").write_bytes(insert_png_chunk(buf.tobytes(), b"eXIf", exif_payload))
    Image.fromarray((small >> 8).astype(np.uint8)).save(tmp_path / "o8.png", exif=exif(orientation))
    img16, img8 = read_image(tmp_path / "o16.png"), read_image(tmp_path / "o8.png")
    assert img16.bit_depth == 16 and img8.bit_depth == 8
    expected = np.round(img8.rgb * 255).astype(np.uint16)
    np.testing.assert_array_equal(np.round(img16.rgb * 65535).astype(np.uint16) >> 8, expected)


# --------------------------------------------------------------------------- read failures


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="no such file") as info:
        read_image(tmp_path / "nope.png")
    assert isinstance(info.value, ImageReadError) and isinstance(info.value, FileNotFoundError)
    assert "nope.png" in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"", os.urandom(3000), b"\x89PNG\r\n\x1a\n" + os.urandom(100), b"hello, not an image"],
)
def test_not_an_image(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.png").write_bytes(content)
    with pytest.raises(ImageReadError, match=r"x\.png"):
        read_image(tmp_path / "x.png")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_file(tmp_path: Path, ext: str) -> None:
    noise = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, noise)
    assert ok
    (tmp_path / f"t{ext}").write_bytes(buf.tobytes()[: len(buf) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / f"t{ext}")


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageReadError, match=r"d\.png': it is a folder$"):
        read_image(tmp_path / "d.png")


def test_size_limit_checked_before_decoding(tmp_path: Path) -> None:
    write_image(tmp_path / "small.png", smooth_rgb(10, 10))
    with pytest.raises(ImageReadError, match="exceeds the limit of 99 pixels"):
        read_image(tmp_path / "small.png", max_pixels=99)
    assert read_image(tmp_path / "small.png", max_pixels=100).shape == (10, 10)
    # 12000 x 10000 = 120 MP claimed by a tiny file: refused from the header, without
    # decoding and without Pillow's decompression-bomb warning escaping.
    (tmp_path / "big.png").write_bytes(crafted_png(12_000, 10_000, b"\0" * 100))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageReadError, match="exceeds the limit"):
            read_image(tmp_path / "big.png")


def test_absurd_header_rejected(tmp_path: Path) -> None:
    (tmp_path / "huge.png").write_bytes(crafted_png(100_000, 100_000, b"\0" * 100))
    with pytest.raises(ImageReadError, match=r"huge\.png"):
        read_image(tmp_path / "huge.png", max_pixels=10**12)  # Pillow's bomb limit applies


def test_zero_size_rejected(tmp_path: Path) -> None:
    (tmp_path / "zero.png").write_bytes(crafted_png(0, 10))
    with pytest.raises(ImageReadError, match=r"zero\.png"):
        read_image(tmp_path / "zero.png")


def test_bad_max_pixels(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        read_image(tmp_path / "any.png", max_pixels=0)


# --------------------------------------------------------------------------- write failures


def test_overwrite_refused_then_allowed(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    write_image(path, to_float(U8))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        write_image(path, 1.0 - to_float(U8))
    assert path.read_bytes() == before
    write_image(path, 1.0 - to_float(U8), overwrite=True)
    np.testing.assert_array_equal(to_uint8(read_image(path).rgb), 255 - U8)
    assert listing(tmp_path) == ["a.png"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_disk_full_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    path = tmp_path / "full.tif"
    if overwrite:
        path.write_bytes(b"old content")
    real_write = os.write

    def write_half_then_fail(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", write_half_then_fail)
    with pytest.raises(OSError, match=r"full\.tif.*nothing was written") as info:
        write_image(path, to_float(U16), bit_depth=16, overwrite=overwrite)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert listing(tmp_path) == (["full.tif"] if overwrite else [])
    if overwrite:
        assert path.read_bytes() == b"old content"


def test_fsync_failure_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_image(tmp_path / "a.png", smooth_rgb())
    monkeypatch.undo()
    assert listing(tmp_path) == []


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"a\.png"):
        write_image(tmp_path / "no" / "a.png", smooth_rgb())


def test_write_validation(tmp_path: Path) -> None:
    rgb = smooth_rgb()
    alpha = np.ones(rgb.shape[:2], np.float32)
    with pytest.raises(ValueError, match="unsupported extension"):
        write_image(tmp_path / "a.gif", rgb)
    with pytest.raises(ValueError, match="16"):
        write_image(tmp_path / "a.jpg", rgb, bit_depth=16)
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "a.png", rgb, bit_depth=12)
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "a.jpg", rgb, alpha=alpha)
    with pytest.raises(ValueError, match="alpha shape"):
        write_image(tmp_path / "a.png", rgb, alpha=alpha[1:])
    with pytest.raises(ValueError, match="HWC"):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(TypeError):
        write_image(tmp_path / "a.png", U8)
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "a.png", np.full((4, 4, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "a.jpg", rgb, quality=0)
    assert listing(tmp_path) == []


def test_writer_clips_out_of_range(tmp_path: Path) -> None:
    rgb = np.array([[[-0.5, 0.5, 1.5]]], np.float32)
    out = read_image(write_image(tmp_path / "c.png", rgb)).rgb
    np.testing.assert_array_equal(to_uint8(out), [[[0, 128, 255]]])


# --------------------------------------------------------------------------- conversions


def test_conversions() -> None:
    values = np.array([-1.0, 0.0, 0.5, 0.999, 1.0, 2.0])
    assert to_uint8(values).tolist() == [0, 0, 128, 255, 255, 255]
    assert to_float(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    assert to_float(np.array([0, 65535], np.uint16)).tolist() == [0.0, 1.0]
    assert to_float(np.array([True, False])).dtype == np.float32
    assert to_float(np.array([0.25], np.float64)).dtype == np.float32
    with pytest.raises(TypeError):
        to_float(np.array([1], np.int32))
    with pytest.raises(ValueError):
        to_float(np.array([1.5]))
    with pytest.raises(TypeError):
        to_uint8(np.array([1], np.uint8))


def test_unsupported_pixel_formats(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), -5, np.int32)).save(tmp_path / "i32.tif")  # mode I
    with pytest.raises(ImageReadError, match="0-65535"):
        read_image(tmp_path / "i32.tif")
    Image.fromarray(np.zeros((8, 8), np.float32)).save(tmp_path / "f.tif")  # mode F
    with pytest.raises(ImageReadError, match="floating-point"):
        read_image(tmp_path / "f.tif")


# --------------------------------------------------------------------------- grey images


def test_grey_files_and_grey_pixels_are_grey(tmp_path: Path) -> None:
    from model_core.imageio import is_grey, to_grey

    rng = np.random.default_rng(0)
    grey = rng.random((12, 14), dtype=np.float32)
    write_image(tmp_path / "g8.png", grey)
    write_image(tmp_path / "g16.png", grey, bit_depth=16)
    colour = rng.random((12, 14, 3), dtype=np.float32)
    write_image(tmp_path / "c.png", colour)
    write_image(tmp_path / "rgb_of_grey.png", np.repeat(grey[..., None], 3, axis=2))
    assert read_image(tmp_path / "g8.png").grey and read_image(tmp_path / "g16.png").grey
    assert read_image(tmp_path / "rgb_of_grey.png").grey  # the pixels decide, not the container
    assert not read_image(tmp_path / "c.png").grey
    assert is_grey(grey) and is_grey(grey[..., None]) and not is_grey(colour)
    tinted = np.stack([grey, np.clip(grey + 0.2, 0, 1), grey], axis=2)
    np.testing.assert_allclose(to_grey(tinted), (2 * grey + np.clip(grey + 0.2, 0, 1)) / 3, atol=1e-6)
    assert to_grey(grey).shape == (12, 14) and to_grey(tinted).dtype == np.float32
