"""Image quality metrics: PSNR and SSIM on float [0, 1] images.

Images are HWC RGB (or HW grayscale) float arrays with values in [0, 1]. The project reports
PSNR/SSIM on 8-bit RGB images, full image, no border crop (``../shared/datasets/README.md``):
round float outputs with :func:`to_uint8_float` before measuring, e.g.
``psnr(to_uint8_float(restored), clean)``.

SSIM follows Wang et al. (2004) as the reference MATLAB ``ssim_index``: 11x11 Gaussian window
with sigma 1.5, K1 = 0.01, K2 = 0.03, population (not sample) covariances, and the SSIM map
computed only where the window fits inside the image ('valid'); an RGB image's SSIM is the mean
over its channels. This equals ``skimage.metrics.structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1)``, which also averages only over the
region 5 px away from the border.

``y_only=True`` measures the luma Y of ITU-R BT.601 as SwinIR/KAIR do:
``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 1], so Y lies in
[16/255, 235/255] and the data range stays 1.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

__all__ = ["psnr", "rgb_to_y", "ssim", "to_uint8_float"]

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_BT601_Y = np.array([65.481, 128.553, 24.966]) / 255.0
# Pixels of a strip measured at a time: a dozen float64 planes of it stay near 100 MB.
_STRIP_PIXELS = 1 << 20


def to_uint8_float(img: np.ndarray) -> np.ndarray:
    """Round a float [0, 1] image to 8 bits and return it as float32 in [0, 1].

    Args:
        img: Float image; values outside [0, 1] are clipped.

    Returns:
        ``round(clip(img, 0, 1) * 255) / 255`` as float32, same shape.
    """
    arr = _as_float_image(img, "img")
    return (np.round(np.clip(arr, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Convert a float [0, 1] RGB image to ITU-R BT.601 luma Y in [16/255, 235/255].

    Args:
        img: Float HWC RGB image in [0, 1].

    Returns:
        Float64 HW array of Y values.
    """
    arr = _as_float_image(img, "img")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"rgb_to_y needs an HWC RGB image, got shape {arr.shape}")
    return arr.astype(np.float64) @ _BT601_Y + 16.0 / 255.0


def psnr(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float = 1.0,
    border: int = 0,
    y_only: bool = False,
    *,
    strip_rows: int | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``.

    Args:
        a: Float image, HWC RGB or HW grayscale, values in [0, data_range].
        b: Float image of the same shape.
        data_range: Peak value (1.0 for [0, 1] images).
        border: Pixels cropped from each side before measuring.
        y_only: Measure the BT.601 luma channel only (RGB inputs; grayscale is used as is).
        strip_rows: Rows measured at a time (memory); default: about a megapixel's worth.

    Returns:
        PSNR in dB; ``inf`` for identical images.
    """
    x, y = _prepare_pair(a, b, border, y_only)
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    total, count = 0.0, 0
    for channel in range(_planes(x, y_only)):
        for top, bottom in _strips(x.shape[0], _strip_height(x, strip_rows)):
            diff = _rows(x, top, bottom, channel, y_only) - _rows(y, top, bottom, channel, y_only)
            total += float(np.vdot(diff, diff))
            count += diff.size
    mse = total / count
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    border: int = 0,
    y_only: bool = False,
    *,
    data_range: float = 1.0,
    strip_rows: int | None = None,
) -> float:
    """Structural similarity index (Wang et al. 2004), averaged over channels.

    The SSIM map is computed in strips of rows, each read with the window's radius of rows
    above and below it, so that a large image needs memory for a strip, not for a dozen
    float64 copies of itself; the result is the same as in one piece.

    Args:
        a: Float image, HWC RGB or HW grayscale, values in [0, data_range].
        b: Float image of the same shape.
        border: Pixels cropped from each side before measuring.
        y_only: Measure the BT.601 luma channel only (RGB inputs; grayscale is used as is).
        data_range: Peak value (1.0 for [0, 1] images).
        strip_rows: Rows of the SSIM map computed at a time; default: about a megapixel's worth.

    Returns:
        Mean SSIM over the valid region of every channel, in [-1, 1]; 1.0 for identical images.
    """
    x, y = _prepare_pair(a, b, border, y_only)
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    if min(x.shape[:2]) < _SSIM_WINDOW:
        raise ValueError(
            f"ssim needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels after the "
            f"border crop, got {x.shape[1]}x{x.shape[0]} (WxH)"
        )
    r = _SSIM_WINDOW // 2
    total, count = 0.0, 0
    # Map row m is centred on image row m + r; a strip of map rows needs r more rows each side.
    for channel in range(_planes(x, y_only)):
        for top, bottom in _strips(x.shape[0] - 2 * r, _strip_height(x, strip_rows)):
            ssim_map = _ssim_map(_rows(x, top, bottom + 2 * r, channel, y_only),
                                 _rows(y, top, bottom + 2 * r, channel, y_only), data_range)
            total += float(ssim_map.sum())
            count += ssim_map.size
    return total / count  # every channel has as many values: the mean of the channels' means


def _strip_height(x: np.ndarray, strip_rows: int | None) -> int:
    if strip_rows is None:
        return max(1, _STRIP_PIXELS // x.shape[1])
    if isinstance(strip_rows, bool) or not isinstance(strip_rows, int | np.integer) or strip_rows < 1:
        raise ValueError(f"strip_rows must be a positive int, got {strip_rows!r}")
    return int(strip_rows)


def _strips(rows: int, height: int) -> Iterator[tuple[int, int]]:
    """(top, bottom) of consecutive strips of ``height`` rows covering ``rows`` rows."""
    for top in range(0, rows, height):
        yield top, min(top + height, rows)


def _planes(img: np.ndarray, y_only: bool) -> int:
    """How many HW planes are measured: the channels, or 1 for the luma or a grey image."""
    return 1 if img.ndim == 2 or y_only else img.shape[2]


def _rows(img: np.ndarray, top: int, bottom: int, channel: int, y_only: bool) -> np.ndarray:
    """Rows ``top:bottom`` of one plane (:func:`_planes`) as a contiguous float64 HW array."""
    part = img[top:bottom]
    if part.ndim == 2:
        return part.astype(np.float64)
    if y_only:
        return rgb_to_y(part)
    return np.ascontiguousarray(part[..., channel], dtype=np.float64)


def _ssim_map(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """SSIM map of two float64 HW arrays over the region where the window fits."""
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    taps = cv2.getGaussianKernel(_SSIM_WINDOW, _SSIM_SIGMA, cv2.CV_64F)
    r = _SSIM_WINDOW // 2

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(img, cv2.CV_64F, taps, taps)[r:-r, r:-r]

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return num / den


def _as_float_image(img: np.ndarray, name: str) -> np.ndarray:
    """Check that ``img`` is a non-empty float HW or HWC numpy array."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(img).__name__}")
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(
            f"{name} must be a float image in [0, 1], got dtype {img.dtype} "
            "(convert 8-bit images with model_core.imageio.to_float)"
        )
    if img.ndim not in (2, 3) or img.size == 0:
        raise ValueError(f"{name} must be a non-empty HW or HWC array, got shape {img.shape}")
    return img


def _prepare_pair(
    a: np.ndarray, b: np.ndarray, border: int, y_only: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two images and crop the border; return views (HW, or HWC with 3 channels for
    ``y_only``), converted to float64 a strip at a time by :func:`_rows`."""
    a = _as_float_image(a, "a")
    b = _as_float_image(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if isinstance(border, bool) or not isinstance(border, int | np.integer) or border < 0:
        raise ValueError(f"border must be a non-negative int, got {border!r}")
    if 2 * border >= min(a.shape[:2]):
        raise ValueError(f"border {border} leaves nothing of a {a.shape[1]}x{a.shape[0]} (WxH) image")
    if border:
        a = a[border:-border, border:-border]
        b = b[border:-border, border:-border]
    if a.ndim == 3 and a.shape[2] == 1:
        a, b = a[..., 0], b[..., 0]
    if y_only and a.ndim == 3 and a.shape[2] != 3:
        raise ValueError(f"rgb_to_y needs an HWC RGB image, got shape {a.shape}")
    return a, b
