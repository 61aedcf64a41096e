"""Classical peers of the networks: OpenCV non-local means and (optionally) BM3D.

Both need the noise strength. When the clean image is known we measure it, as papers hand
BM3D the true sigma; for a real photo it is estimated blindly from the noisy image.
No Qt here: the worker calls these off the GUI thread.
"""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np

METHODS = {"nlm": "non-local means (OpenCV)", "bm3d": "BM3D"}


def bm3d_available() -> bool:
    """Whether the optional ``bm3d`` package is installed."""
    return importlib.util.find_spec("bm3d") is not None


def noise_sigma(noisy: np.ndarray, clean: np.ndarray | None = None) -> float:
    """Noise standard deviation on the 0-255 scale.

    Args:
        noisy: float32 (H, W, 3) in [0, 1].
        clean: The clean image, when known (the sigma is then measured, not estimated).
    """
    if clean is not None:
        return float(np.std((noisy - clean).astype(np.float64)) * 255.0)
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(noisy, channel_axis=-1, average_sigmas=True)) * 255.0


def nlm_strength(sigma: float) -> float:
    """OpenCV's filter strength ``h`` for a noise sigma (0-255 scale)."""
    return float(np.clip(0.9 * sigma, 3.0, 60.0))


def denoise_nlm(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Non-local means with ``h`` from the noise level (8-bit, as OpenCV requires)."""
    u8 = np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    h = nlm_strength(sigma)
    bgr = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(u8[..., ::-1]), None, h, h, 7, 21)
    return bgr[..., ::-1].astype(np.float32) / np.float32(255.0)


def denoise_bm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Colour BM3D with the given noise sigma (0-255 scale).

    Raises:
        RuntimeError: If the ``bm3d`` package is missing.
    """
    if not bm3d_available():
        raise RuntimeError("BM3D needs the 'bm3d' package (pip install bm3d)")
    import bm3d

    out = bm3d.bm3d_rgb(noisy.astype(np.float64), max(sigma, 0.5) / 255.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def denoise(method: str, noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Run a classical method by name (``nlm`` or ``bm3d``)."""
    functions = {"nlm": denoise_nlm, "bm3d": denoise_bm3d}
    if method not in functions:
        raise ValueError(f"unknown classical method {method!r}; choose one of {', '.join(METHODS)}")
    return functions[method](noisy, sigma)
