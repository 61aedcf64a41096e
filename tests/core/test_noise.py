"""Tests of model_core.noise: statistics, determinism, validation and the typed spec API."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data

from model_core import noise
from model_core.noise import NOISE_TYPES, NoiseSpec, apply_noise, default_grid

CLI_NAMES = ("gaussian", "correlated", "speckle", "poisson", "salt-pepper", "mixture", "jpeg")


def flat(value: float = 0.5, size: int = 256) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.float32)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 128x128 natural RGB image, float32 in [0, 1] (multiples of 1/255)."""
    return (skimage.data.astronaut()[::4, ::4] / 255.0).astype(np.float32)


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("sigma", [5.0, 15.0, 25.0])
def test_gaussian_measured_sigma(sigma: float) -> None:
    out = noise.gaussian(flat(), sigma, seed=3)
    residual = out.astype(np.float64) - 0.5
    assert abs(residual.std() * 255.0 / sigma - 1.0) < 0.03
    assert abs(residual.mean()) < 0.002


def _reference_kernel() -> np.ndarray:
    """The 5x5 Gaussian kernel of std 1 px, built independently of the module."""
    taps = np.exp(-(np.arange(-2, 3) ** 2) / 2.0)
    kernel = np.outer(taps, taps)
    return kernel / kernel.sum()


def test_correlated_std_and_spatial_correlation() -> None:
    kernel = _reference_kernel()
    np.testing.assert_allclose(noise.correlation_kernel(), kernel, rtol=1e-12)
    factor = math.sqrt(float((kernel**2).sum()))
    assert 0.28 < factor < 0.29
    sigma = 50.0
    res = noise.correlated(flat(size=384), sigma, seed=5).astype(np.float64) - 0.5
    assert abs(res.std() * 255.0 / (sigma * factor) - 1.0) < 0.03
    # Correlation of horizontal neighbours: sum k(x) k(x+1) / sum k^2 (about 0.78).
    expected = float((kernel[:, 1:] * kernel[:, :-1]).sum() / (kernel**2).sum())
    measured = np.corrcoef(res[:, 1:, 0].ravel(), res[:, :-1, 0].ravel())[0, 1]
    assert measured > 0.5
    assert abs(measured - expected) < 0.03
    # Channels are drawn independently.
    assert abs(np.corrcoef(res[..., 0].ravel(), res[..., 1].ravel())[0, 1]) < 0.05


def test_correlated_is_stationary_at_the_border() -> None:
    res = noise.correlated(flat(size=384), 50.0, seed=1).astype(np.float64) - 0.5
    edge = np.concatenate([res[0].ravel(), res[-1].ravel(), res[:, 0].ravel(), res[:, -1].ravel()])
    assert abs(edge.std() / res.std() - 1.0) < 0.08


@pytest.mark.parametrize("v", [0.018, 0.04])
def test_speckle_variance(v: float) -> None:
    img = flat()
    n = (noise.speckle(img, v, seed=7).astype(np.float64) - 0.5) / 0.5
    assert abs(n.var() / v - 1.0) < 0.03
    assert abs(n.mean()) < 0.002
    assert np.abs(n).max() <= math.sqrt(12 * v) / 2 + 1e-6  # uniform, bounded


def test_speckle_is_multiplicative() -> None:
    img = flat(0.0)
    assert np.array_equal(noise.speckle(img, 0.04, seed=0), img)


def _poisson_test_image() -> np.ndarray:
    """Mostly 128/255 with a strip of 99 other levels: 100 distinct values, so vals = 128."""
    img = np.full((300, 300, 3), 128 / 255, dtype=np.float32)
    img[:4, :99, :] = (np.arange(99) / 255.0)[None, :, None]
    assert np.unique(img).size == 100
    return img


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.5])
def test_poisson_mean_and_variance(alpha: float) -> None:
    img = _poisson_test_image()
    out = noise.poisson(img, alpha, seed=11).astype(np.float64)
    region = out[10:, 10:] - 128 / 255
    expected_var = alpha**2 * (128 / 255) / 128.0  # vals = 2^ceil(log2(100)) = 128
    assert abs(region.mean()) < 0.003
    assert abs(region.var() / expected_var - 1.0) < 0.05


def test_poisson_variance_scales_with_alpha_squared() -> None:
    img = _poisson_test_image()
    var1 = (noise.poisson(img, 1.0, seed=2)[10:, 10:].astype(np.float64)).var()
    var2 = (noise.poisson(img, 2.0, seed=2)[10:, 10:].astype(np.float64)).var()
    assert abs(var2 / var1 - 4.0) < 0.05  # same seed: same Poisson draw, scaled residual


def test_poisson_alpha_zero_returns_8bit_quantised_input() -> None:
    img = np.linspace(0, 1, 3 * 50 * 50, dtype=np.float32).reshape(50, 50, 3)
    out = noise.poisson(img, 0.0, seed=0)
    np.testing.assert_allclose(out, np.round(img * 255) / 255, atol=1e-6)


@pytest.mark.parametrize("d", [0.02, 0.1])
def test_salt_pepper_density_values_and_channel_independence(d: float) -> None:
    img = flat()
    out = noise.salt_pepper(img, d, seed=4)
    hit = out != img
    assert abs(hit.mean() / d - 1.0) < 0.1
    assert set(np.unique(out[hit])) <= {0.0, 1.0}
    assert abs((out == 0).mean() - (out == 1).mean()) < 0.1 * d
    # Independent channels: P(some channel hit) = 1 - (1 - d)^3, P(all hit) = d^3.
    any_hit = hit.any(axis=2).mean()
    assert abs(any_hit / (1 - (1 - d) ** 3) - 1.0) < 0.1
    assert hit.all(axis=2).mean() < 3 * d**3 + 1e-4


def test_mixture_error_grows_with_level(photo: np.ndarray) -> None:
    mse = [float(np.mean((noise.mixture(photo, lv, seed=9) - photo) ** 2)) for lv in range(1, 6)]
    assert all(a < b for a, b in zip(mse, mse[1:], strict=False))


def test_jpeg_quality_orders_psnr_and_ignores_seed(photo: np.ndarray) -> None:
    def psnr(x: np.ndarray) -> float:
        return 10 * math.log10(1.0 / float(np.mean((x.astype(np.float64) - photo) ** 2)))

    scores = [psnr(noise.jpeg(photo, q, seed=0)) for q in (10, 30, 50, 90)]
    assert all(a < b for a, b in zip(scores, scores[1:], strict=False))
    assert np.array_equal(noise.jpeg(photo, 30, seed=0), noise.jpeg(photo, 30, seed=1))
    out = noise.jpeg(photo, 30, seed=0)
    np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-4)


def test_jpeg_keeps_colour_order(photo: np.ndarray) -> None:
    red = np.zeros((32, 32, 3), np.float32)
    red[..., 0] = 1.0
    out = noise.jpeg(red, 90, seed=0)
    assert out[..., 0].mean() > 0.9 and out[..., 2].mean() < 0.1


def test_jpeg_grayscale() -> None:
    gray = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    assert noise.jpeg(gray, 50, seed=0).shape == (64, 64)


# --------------------------------------------------------------------------- common contract


@pytest.mark.parametrize("name", CLI_NAMES)
def test_seeded_pure_and_clipped(name: str, photo: np.ndarray) -> None:
    info = NOISE_TYPES[name]
    level = max(info.paper_levels)
    before = photo.copy()
    a = info.func(photo, level, 123)
    b = info.func(photo, level, 123)
    assert np.array_equal(photo, before)  # input untouched
    assert a.dtype == np.float32 and a.shape == photo.shape
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert np.array_equal(a, b)
    c = info.func(photo, level, 124)
    assert np.array_equal(a, c) == (name == "jpeg")


@pytest.mark.parametrize("name", [n for n in CLI_NAMES if n != "jpeg"])
def test_grayscale_input(name: str) -> None:
    gray = np.full((40, 40), 0.5, np.float32)
    out = NOISE_TYPES[name].func(gray, NOISE_TYPES[name].default_level, 0)
    assert out.shape == (40, 40)


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("gaussian", -1.0), ("gaussian", 101.0), ("gaussian", float("nan")),
        ("correlated", 100.5), ("speckle", 0.2), ("speckle", -0.01), ("poisson", 5.5),
        ("salt-pepper", 0.6), ("mixture", 0.0), ("mixture", 6.0), ("mixture", 2.5),
        ("jpeg", 0.0), ("jpeg", 101.0), ("jpeg", 50.5),
    ],
)  # fmt: skip
def test_out_of_range_levels_raise(name: str, level: float) -> None:
    with pytest.raises(ValueError, match=name):
        NOISE_TYPES[name].func(flat(size=16), level, 0)
    with pytest.raises(ValueError, match=name):
        NoiseSpec(name, level)


def test_bad_inputs_raise() -> None:
    with pytest.raises(TypeError):
        noise.gaussian(np.zeros((8, 8, 3), np.uint8), 15, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        noise.gaussian(np.full((8, 8, 3), 2.0, np.float32), 15, 0)
    with pytest.raises(ValueError):
        noise.gaussian(np.zeros((8,), np.float32), 15, 0)
    with pytest.raises(TypeError):
        noise.gaussian(flat(size=8), 15, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        noise.gaussian(flat(size=8), 15, -1)
    with pytest.raises(TypeError):
        noise.gaussian(flat(size=8), "15", 0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- spec API


def test_registry_contents() -> None:
    assert tuple(NOISE_TYPES) == CLI_NAMES
    for name, info in NOISE_TYPES.items():
        lo, hi = info.valid_range
        assert info.name == name and info.description and info.level_meaning
        assert lo <= info.default_level <= hi
        assert all(lo <= lv <= hi for lv in info.paper_levels)


def test_unknown_type_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="gaussian, correlated, speckle"):
        NoiseSpec.parse("bilateral:3")
    with pytest.raises(ValueError, match="unknown noise type"):
        NoiseSpec("bilateral", 3.0)


@pytest.mark.parametrize("spec", default_grid() + [NoiseSpec("jpeg", q) for q in (10, 90)])
def test_parse_str_round_trip(spec: NoiseSpec) -> None:
    assert NoiseSpec.parse(str(spec)) == spec


def test_parse_forms() -> None:
    assert str(NoiseSpec.parse("poisson:2.5")) == "poisson:2.5"
    assert str(NoiseSpec.parse("gaussian:15")) == "gaussian:15"
    assert NoiseSpec.parse(" Salt_Pepper:0.02") == NoiseSpec("salt-pepper", 0.02)
    assert NoiseSpec.parse("jpeg") == NoiseSpec("jpeg", NOISE_TYPES["jpeg"].default_level)
    for bad in ("gaussian:", "gaussian:abc", "gaussian:1:2"):
        with pytest.raises(ValueError, match="TYPE:NUMBER"):
            NoiseSpec.parse(bad)
    with pytest.raises(TypeError):
        NoiseSpec.parse(15)  # type: ignore[arg-type]


def test_spec_is_frozen() -> None:
    spec = NoiseSpec("gaussian", 15)
    with pytest.raises(AttributeError):
        spec.level = 25.0  # type: ignore[misc]
    assert isinstance(spec.level, float)


def test_default_grid() -> None:
    assert [str(s) for s in default_grid()] == [
        "gaussian:15", "gaussian:25", "gaussian:50",
        "correlated:40", "correlated:45", "correlated:50", "correlated:55", "correlated:60",
        "speckle:0.018", "speckle:0.024", "speckle:0.03", "speckle:0.036", "speckle:0.04",
        "poisson:2", "poisson:2.5", "poisson:3", "poisson:3.5",
        "salt-pepper:0.002", "salt-pepper:0.02",
        "mixture:1", "mixture:2", "mixture:3", "mixture:4", "mixture:5",
    ]  # fmt: skip


@pytest.mark.parametrize("text", ["gaussian:25", "correlated:50", "mixture:3", "speckle:0.03"])
def test_apply_noise_dispatch_and_quantize(text: str, photo: np.ndarray) -> None:
    spec = NoiseSpec.parse(text)
    raw = NOISE_TYPES[spec.kind].func(photo, spec.level, 42)
    exact = apply_noise(photo, spec, 42, quantize=False)
    assert np.array_equal(exact, raw)
    quantised = apply_noise(photo, text, 42)
    assert quantised.dtype == np.float32
    np.testing.assert_array_equal(quantised, np.round(raw * 255) / 255)
    assert not np.array_equal(quantised, raw)
    with pytest.raises(TypeError):
        apply_noise(photo, 25, 0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- grey images


@pytest.mark.parametrize("spec", [*default_grid(), NoiseSpec("jpeg", 30)], ids=str)
def test_noise_on_a_grey_image_is_grey(photo: np.ndarray, spec: NoiseSpec) -> None:
    grey = photo.mean(axis=2, dtype=np.float32)
    noisy = apply_noise(np.repeat(grey[..., None], 3, axis=2), spec, seed=4)
    assert noisy.shape == photo.shape
    assert np.array_equal(noisy[..., 0], noisy[..., 1]) and np.array_equal(noisy[..., 0], noisy[..., 2])
    np.testing.assert_array_equal(noisy[..., 0], apply_noise(grey, spec, seed=4))
    if spec.level and spec.kind != "jpeg":
        assert not np.array_equal(noisy[..., 0], grey)


def test_noise_on_a_colour_image_stays_independent_per_channel(photo: np.ndarray) -> None:
    noisy = apply_noise(photo, NoiseSpec("gaussian", 25), seed=4)
    residual = noisy.astype(np.float64) - photo
    assert abs(np.corrcoef(residual[..., 0].ravel(), residual[..., 1].ravel())[0, 1]) < 0.1
