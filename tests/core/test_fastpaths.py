"""The fast inference paths against the plain fp32 path, and the engine's memory bound.

Tolerances: the fast fp32 path computes the same sums in another order, so it matches the
plain path to float rounding (1e-5 here; the paper-size parity tests in test_network.py hold
it to the official code at 1e-4). bf16 keeps 8 mantissa bits in the matrix products; on the
tiny random networks used here (weights scaled up so attention matters) that is a max-abs
difference of a few 1e-3 on [0, 1] outputs, so the bound is 0.03 max and 0.005 mean. The
0.02 dB PSNR criterion needs trained weights and a real image: benchmarks/bench_inference.py
measures it (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import torch

import model_core.device as device_mod
import model_core.network.swinir as swinir
from model_core.device import autocast_context, configure_cpu_threads, tile_bytes_per_pixel
from model_core.engine import Engine, RunSettings, TileUpdate
from model_core.network import MaskedSwinIR, draw_keep_maps
from model_core.network.attention import partition_windows, shift_mask_kinds, shift_window_mask, window_order
from tests.conftest import lively_tiny_model


@contextlib.contextmanager
def plain_path(model: MaskedSwinIR) -> Iterator[None]:
    """The reference per-window path: autograd on selects it; no parameter records a graph."""
    model.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        model.requires_grad_(True)


@pytest.fixture(scope="module")
def model() -> MaskedSwinIR:
    return lively_tiny_model()


@pytest.mark.parametrize(("batch", "size", "chunk"),
                         [(1, (19, 23), 4096), (2, (24, 40), 16), (1, (8, 8), 16)])
def test_fast_fp32_path_equals_plain_path(model, monkeypatch, batch, size, chunk) -> None:
    # Small chunks put several images' last window rows inside one chunk and split others.
    monkeypatch.setattr(swinir, "INFERENCE_CHUNK_TOKENS", chunk)
    x = torch.rand(batch, 3, *size)
    hp, wp = model.padded_size(*size)
    keep = draw_keep_maps(model.cfg.num_blocks, batch, hp, wp, 0.75, torch.Generator().manual_seed(1))
    with plain_path(model):
        plain = model(x, keep_maps=keep)
    with torch.inference_mode():
        fast = model(x, keep_maps=keep)
        unmasked = model(x)
    assert not plain.requires_grad
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)
    assert (fast - unmasked).abs().max() > 1e-3  # the masks reached the fast path


def test_fast_path_leaves_its_input_alone(model) -> None:
    block = model.blocks[0]
    x = torch.rand(1, 4, 4, model.cfg.embed_dim)  # one window: the partition is a view
    before = x.clone()
    with torch.no_grad():
        block(x)
    assert torch.equal(x, before)


def test_bf16_path_close_to_fp32(model) -> None:
    x = torch.rand(1, 3, 32, 40)
    keep = draw_keep_maps(model.cfg.num_blocks, 1, 32, 40, 0.75, torch.Generator().manual_seed(2))
    with torch.inference_mode():
        fp32 = model(x, keep_maps=keep)
        with autocast_context(torch.device("cpu"), "bf16"):
            bf16 = model(x, keep_maps=keep)
    assert bf16.dtype == torch.float32
    diff = (bf16 - fp32).abs()
    assert diff.max() < 0.03 and diff.mean() < 0.005


def test_cached_bias_equals_uncached_and_follows_the_table() -> None:
    attn = lively_tiny_model().blocks[1].attn
    torch.testing.assert_close(attn.cached_position_bias(), attn.position_bias().detach(), rtol=0, atol=0)
    assert attn.cached_position_bias() is attn.cached_position_bias()
    assert attn.cached_position_bias(torch.bfloat16).dtype == torch.bfloat16
    with torch.no_grad():
        attn.relative_position_bias_table.add_(1.0)  # e.g. an optimiser step or load_state_dict
    torch.testing.assert_close(attn.cached_position_bias(), attn.position_bias().detach(), rtol=0, atol=0)


@pytest.mark.parametrize("shift", [0, 2])
def test_window_order_is_roll_and_partition(shift: int) -> None:
    h, w, ws = 12, 16, 4
    x = torch.rand(1, h, w, 5)
    order, inverse = window_order(h, w, ws, shift, torch.device("cpu"))
    rolled = torch.roll(x, (-shift, -shift), (1, 2)) if shift else x
    expected = partition_windows(rolled, ws).reshape(-1, 5)
    gathered = x.view(-1, 5)[order.long()]
    assert torch.equal(gathered, expected)
    assert torch.equal(gathered[inverse.long()], x.view(-1, 5))


def test_mask_kinds_are_the_four_window_masks() -> None:
    cpu = torch.device("cpu")
    kinds = shift_mask_kinds(8, 4, cpu)
    full = shift_window_mask(32, 40, 8, 4, cpu)
    assert torch.equal(kinds[0, 0], full[1, 2]) and not kinds[0, 0].any()
    assert torch.equal(kinds[0, 1], full[0, -1]) and torch.equal(kinds[1, 0], full[-1, 0])
    assert torch.equal(kinds[1, 1], full[-1, -1])


# --------------------------------------------------------------------------- engine


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(lively_tiny_model(), device="cpu")


def test_progressive_tiles_assemble_to_the_one_shot_result(engine) -> None:
    image = np.random.default_rng(4).random((45, 61, 3), dtype=np.float32)
    settings = RunSettings(tile=16, overlap=4, focus=(40, 10))  # default precision ("auto")
    canvas = np.full(image.shape, np.nan, np.float32)
    updates = [e for e in engine.run(image, settings) if isinstance(e, TileUpdate)]
    for u in updates:
        canvas[u.y0:u.y1, u.x0:u.x1] = u.image
    one_shot = engine.denoise(image, settings).image
    assert len(updates) > 9 and updates[0].y1 == 45 and updates[0].x0 == 0  # nearest the focus first
    np.testing.assert_array_equal(canvas, one_shot)


def spy_inputs(engine: Engine, monkeypatch) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    forward = engine.model.forward

    def spy(x, *args, **kwargs):
        shapes.append(tuple(x.shape))
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(engine.model, "forward", spy)
    return shapes


@pytest.mark.parametrize("tile", [0, 4096, 24])
def test_tiles_never_exceed_the_memory_budget(engine, monkeypatch, tile) -> None:
    cfg = engine.config
    per_pixel = tile_bytes_per_pixel(cfg.embed_dim, cfg.num_blocks, torch.device("cpu"), "fp32")
    monkeypatch.setattr(device_mod, "CPU_TILE_BUDGET", per_pixel * 32 * 32)  # 32x32-pixel tiles at most
    shapes = spy_inputs(engine, monkeypatch)
    image = np.random.default_rng(5).random((70, 90, 3), dtype=np.float32)
    result = engine.denoise(image, RunSettings(tile=tile, overlap=8, precision="fp32"))
    assert result.image.shape == image.shape and np.isfinite(result.image).all()
    assert len(shapes) > 4
    ws = cfg.window_size  # the last tile of a row or column may be up to ws - 1 longer
    assert all(s[0] == 1 and (s[2] - ws + 1) * (s[3] - ws + 1) <= 32 * 32 for s in shapes), shapes
    tile_h, tile_w = result.tile_shape
    assert tile_h * tile_w <= 32 * 32 and result.tile_count == len(shapes)


def test_auto_tiles_cover_the_image_with_fewer_pixels_than_square_ones(engine, monkeypatch) -> None:
    """Tile 0 within a budget cuts each axis into equal tiles, not into budget-sized squares
    whose last row and column overlap their neighbours far more than asked."""
    cfg = engine.config
    per_pixel = tile_bytes_per_pixel(cfg.embed_dim, cfg.num_blocks, torch.device("cpu"), "fp32")
    monkeypatch.setattr(device_mod, "CPU_TILE_BUDGET", per_pixel * 40 * 40)
    shapes = spy_inputs(engine, monkeypatch)
    image = np.random.default_rng(6).random((70, 90, 3), dtype=np.float32)
    result = engine.denoise(image, RunSettings(tile=0, overlap=8, precision="fp32"))
    auto_pixels = sum(s[2] * s[3] for s in shapes)
    shapes.clear()
    engine.denoise(image, RunSettings(tile=40, overlap=8, precision="fp32"))
    square_pixels = sum(s[2] * s[3] for s in shapes)
    assert auto_pixels < square_pixels, (auto_pixels, square_pixels)
    assert result.tile_count > 1 and result.tile_shape[0] * result.tile_shape[1] <= 40 * 40


def test_tiles_within_budget_are_left_as_asked(engine, monkeypatch) -> None:
    shapes = spy_inputs(engine, monkeypatch)
    result = engine.denoise(np.zeros((40, 52, 3), np.float32), RunSettings(tile=0))
    assert shapes == [(1, 3, 40, 52)]
    assert result.tile_shape == (40, 52) and result.tile_count == 1


def test_the_default_runs_the_whole_image_as_one_tile(engine, monkeypatch) -> None:
    """Issue 11: the default tile was a fixed 256 (nine overlapping tiles, 2.25x the pixels
    of a 512x512 image); now it is auto, tiled only when the memory budget needs it."""
    assert RunSettings().tile == 0
    shapes = spy_inputs(engine, monkeypatch)
    engine.denoise(np.zeros((300, 260, 3), np.float32))
    assert shapes == [(1, 3, 300, 260)]


def test_thread_count_is_capped_never_raised(monkeypatch) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert configure_cpu_threads() == 1
        monkeypatch.setattr(device_mod, "physical_cores", lambda: 1)
        torch.set_num_threads(2)
        assert configure_cpu_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bf16_on_a_cpu_without_it_warns_and_auto_picks_fp32(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: False)
    assert device_mod.resolve_precision("auto", cpu) == "fp32"
    with pytest.warns(RuntimeWarning, match="no native bf16"):
        assert device_mod.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: True)
    assert device_mod.resolve_precision("auto", cpu) == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert device_mod.resolve_precision("bf16", cpu) == "bf16"
