"""Tests of model_core.metrics against hand formulas and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from model_core.metrics import psnr, rgb_to_y, ssim, to_uint8_float


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return (skimage.data.astronaut()[::4, ::4] / 255.0).astype(np.float32)


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0.0, sigma, img.shape), 0, 1).astype(np.float32)


def sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(
        structural_similarity(
            a.astype(np.float64),
            b.astype(np.float64),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=2 if a.ndim == 3 else None,
        )
    )


def y_reference(img: np.ndarray) -> np.ndarray:
    """BT.601 luma as SwinIR/KAIR: on 0-255 values (16 + 65.481 R + 128.553 G + 24.966 B)."""
    r, g, b = (img[..., c].astype(np.float64) for c in range(3))
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


# --------------------------------------------------------------------------- PSNR


def test_psnr_hand_formula(clean: np.ndarray) -> None:
    other = noisy(clean, 0.05)
    mse = np.mean((clean.astype(np.float64) - other) ** 2)
    assert psnr(clean, other) == pytest.approx(10 * math.log10(1.0 / mse), abs=1e-9)
    assert psnr(clean * 255, other * 255, data_range=255) == pytest.approx(
        psnr(clean, other), abs=1e-4
    )
    ref = peak_signal_noise_ratio(clean.astype(np.float64), other.astype(np.float64), data_range=1)
    assert psnr(clean, other) == pytest.approx(ref, abs=1e-9)


def test_psnr_known_value() -> None:
    a = np.zeros((4, 4, 3), np.float32)
    b = np.full((4, 4, 3), 0.1, np.float32)  # MSE 0.01 -> 20 dB
    assert psnr(a, b) == pytest.approx(20.0, abs=1e-5)


def test_identical_images(clean: np.ndarray) -> None:
    assert psnr(clean, clean.copy()) == math.inf
    assert ssim(clean, clean.copy()) == pytest.approx(1.0, abs=1e-12)


def test_psnr_border_crop(clean: np.ndarray) -> None:
    other = clean.copy()
    other[:3] = 1.0 - other[:3]  # damage only a 3-pixel band at the top
    assert psnr(clean, other, border=3) == math.inf
    assert psnr(clean, other, border=2) < 40


def test_psnr_y_only(clean: np.ndarray) -> None:
    other = noisy(clean, 0.05, seed=1)
    mse = np.mean((y_reference(clean) - y_reference(other)) ** 2)
    assert psnr(clean, other, y_only=True) == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)
    # Y has a smaller range than RGB ([16, 235]) and averages channel noise: higher PSNR.
    assert psnr(clean, other, y_only=True) > psnr(clean, other)


def test_rgb_to_y_range() -> None:
    img = np.array([[[0, 0, 0], [1, 1, 1]]], np.float32)
    np.testing.assert_allclose(rgb_to_y(img), [[16 / 255, 235 / 255]], atol=1e-6)


def test_grayscale_inputs(clean: np.ndarray) -> None:
    gray, other = clean[..., 1], noisy(clean, 0.05)[..., 1]
    assert psnr(gray, other, y_only=True) == psnr(gray, other)
    assert psnr(gray[..., None], other[..., None]) == pytest.approx(psnr(gray, other))
    assert ssim(gray, other) == pytest.approx(sk_ssim(gray, other), abs=1e-6)


# --------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.2])
def test_ssim_matches_skimage_rgb(clean: np.ndarray, sigma: float) -> None:
    other = noisy(clean, sigma, seed=2)
    assert ssim(clean, other) == pytest.approx(sk_ssim(clean, other), abs=1e-4)


def test_ssim_matches_skimage_tight_on_odd_shape() -> None:
    rng = np.random.default_rng(3)
    a = rng.random((37, 52, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    assert ssim(a, b) == pytest.approx(sk_ssim(a, b), abs=1e-6)


def test_ssim_border_and_y_only(clean: np.ndarray) -> None:
    other = noisy(clean, 0.05, seed=4)
    crop = (slice(6, -6), slice(6, -6))
    assert ssim(clean, other, border=6) == pytest.approx(sk_ssim(clean[crop], other[crop]), 1e-6)
    y_a, y_b = y_reference(clean), y_reference(other)
    assert ssim(clean, other, y_only=True) == pytest.approx(sk_ssim(y_a, y_b), abs=1e-6)


def test_ssim_decreases_with_noise(clean: np.ndarray) -> None:
    scores = [ssim(clean, noisy(clean, s)) for s in (0.01, 0.05, 0.1, 0.3)]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    other = noisy(clean, 0.05)
    assert ssim(clean, other) == pytest.approx(ssim(other, clean), abs=1e-12)


# --------------------------------------------------------------------------- validation


def test_shape_mismatch_raises(clean: np.ndarray) -> None:
    with pytest.raises(ValueError, match="same shape"):
        psnr(clean, clean[:-1])
    with pytest.raises(ValueError, match="same shape"):
        ssim(clean, clean[..., :2])


def test_bad_inputs_raise(clean: np.ndarray) -> None:
    as_u8 = (clean * 255).astype(np.uint8)
    with pytest.raises(TypeError):
        psnr(as_u8, as_u8)
    with pytest.raises(TypeError):
        ssim(clean.tolist(), clean)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(clean[:10, :10], clean[:10, :10])
    with pytest.raises(ValueError, match="border"):
        psnr(clean, clean, border=64)
    with pytest.raises(ValueError, match="border"):
        psnr(clean, clean, border=-1)
    with pytest.raises(ValueError, match="data_range"):
        psnr(clean, clean, data_range=0)


def test_to_uint8_float() -> None:
    img = np.array([[[-0.2, 0.5, 1.3], [0.1234, 0.998, 0.002]]], np.float32)
    out = to_uint8_float(img)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out * 255, np.round(out * 255))
    expected = np.array([[[0, 128, 255], [31, 254, 1]]]) / 255
    np.testing.assert_allclose(out, expected, atol=1e-7)


# --------------------------------------------------------------------------- large images in strips


@pytest.mark.parametrize("strip_rows", [1, 3, 7, 50])
@pytest.mark.parametrize(("border", "y_only", "shape"), [(0, False, (45, 37, 3)), (4, True, (45, 37, 3)),
                                                         (0, False, (45, 37)), (2, False, (23, 31, 1))])
def test_ssim_in_strips_equals_the_whole_image(strip_rows: int, border: int, y_only: bool,
                                               shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(3)
    a = rng.random(shape, dtype=np.float32)
    b = np.clip(a + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)
    whole = ssim(a, b, border=border, y_only=y_only, strip_rows=10_000)
    assert ssim(a, b, border=border, y_only=y_only, strip_rows=strip_rows) == pytest.approx(whole, abs=1e-6)
    crop = (slice(border, shape[0] - border or None), slice(border, shape[1] - border or None))
    x, y = (rgb_to_y(a[crop]), rgb_to_y(b[crop])) if y_only else (a[crop].squeeze(), b[crop].squeeze())
    assert whole == pytest.approx(sk_ssim(x, y), abs=1e-6)
    assert psnr(a, b, border=border, y_only=y_only, strip_rows=strip_rows) == pytest.approx(
        psnr(a, b, border=border, y_only=y_only, strip_rows=10_000), abs=1e-9)


def test_ssim_and_psnr_memory_stays_a_fraction_of_the_image() -> None:
    import tracemalloc

    rng = np.random.default_rng(0)
    a = rng.random((768, 768, 3), dtype=np.float32)
    b = rng.random((768, 768, 3), dtype=np.float32)
    for measure in (ssim, psnr):
        tracemalloc.start()
        try:
            measure(a, b, strip_rows=16)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < a.nbytes / 2, f"{measure.__name__} peak {peak / 2**20:.1f} MiB"
