"""Classical peers of the networks, exactly as ``mdn eval`` runs them (no Qt here).

Non-local means and BM3D need the noise level: for synthetic noise it is the one ``mdn eval``
gives them (:func:`model_core.eval.methods.known_sigma`: the Gaussian sigma, or the measured std
of noisy - clean); for a real photo without a clean image it is estimated blindly.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from model_core.eval.methods import BM3DMethod, NLMMethod, known_sigma
from model_core.noise import NoiseSpec

METHODS = {"nlm": "non-local means (OpenCV)", "bm3d": "BM3D"}


def bm3d_available() -> bool:
    """Whether the optional ``bm3d`` package is installed."""
    return importlib.util.find_spec("bm3d") is not None


def noise_sigma(noisy: np.ndarray, spec: NoiseSpec | None, clean: np.ndarray | None) -> float:
    """Noise std on the [0, 1] scale: the known level, or a blind estimate for real photos."""
    if spec is not None:
        return known_sigma(spec, noisy, clean)
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(noisy, channel_axis=-1, average_sigmas=True))


def denoise(method: str, noisy: np.ndarray, spec: NoiseSpec | None, clean: np.ndarray | None) -> np.ndarray:
    """Run ``nlm`` or ``bm3d`` on a float32 (H, W, 3) image in [0, 1].

    Raises:
        ValueError: For an unknown method.
        RuntimeError: For BM3D without the ``bm3d`` package.
    """
    methods = {"nlm": NLMMethod, "bm3d": BM3DMethod}
    if method not in methods:
        raise ValueError(f"unknown classical method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "bm3d" and not bm3d_available():
        raise RuntimeError("BM3D needs the optional 'bm3d' package (pip install bm3d)")
    sigma = noise_sigma(noisy, spec, clean)
    # The methods only read ``spec`` to find sigma, which is given here.
    return methods[method]().denoise(noisy, spec, sigma)  # type: ignore[arg-type]
