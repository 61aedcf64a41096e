"""Tests of the inference engine (model_core.engine) and its tiling (model_core.tiling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core.engine import (
    Cancelled,
    DenoiseResult,
    Engine,
    Progress,
    RunSettings,
    TileUpdate,
    as_rgb,
)
from model_core.metrics import psnr
from model_core.network import ProbeRequest, SwinIRConfig
from model_core.network.checkpoint import save_weights
from model_core.tiling import axis_spans, blend_window, order_by_focus, plan_tiles
from tests.conftest import lively_tiny_model

H, W = 40, 52
WS = SwinIRConfig.tiny().window_size


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(lively_tiny_model(), device="cpu")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).random((H, W, 3), dtype=np.float32)


def events(engine: Engine, img: np.ndarray, settings: RunSettings, cancel=None) -> list:
    return list(engine.run(img, settings, cancel))


def n_tiles(h: int, w: int, settings: RunSettings) -> int:
    return len(plan_tiles(h, w, settings.tile, settings.overlap, WS))


# --------------------------------------------------------------------------- tiling


@pytest.mark.parametrize(("length", "tile", "overlap"), [(70, 32, 8), (90, 32, 8), (33, 32, 8),
                                                         (100, 16, 12), (64, 32, 0), (20, 64, 8)])
def test_axis_spans_cover_aligned_and_overlap(length: int, tile: int, overlap: int) -> None:
    spans = axis_spans(length, tile, overlap, WS)
    assert spans[0][0] == 0 and spans[-1][1] == length
    cores = [(c0, c1) for _, _, c0, c1 in spans]
    assert cores[0][0] == 0 and cores[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:], strict=False))
    for (_, e0, _, _), (s1, _, _, _) in zip(spans, spans[1:], strict=False):
        assert e0 - s1 >= overlap and s1 % WS == 0
    for start, stop, c0, c1 in spans:
        assert start <= c0 < c1 <= stop
        assert stop - start <= max(tile + WS - 1, length if tile >= length else 0)


def test_axis_spans_rejects_bad_overlap() -> None:
    with pytest.raises(ValueError, match="overlap"):
        axis_spans(100, 32, 32, WS)


def test_blend_window_is_positive_and_flat_at_image_border() -> None:
    tiles = plan_tiles(64, 64, 32, 16, WS)
    first = blend_window(tiles[0], 64, 64, 16)
    assert first.min() > 0 and first[0, 0] == 1.0 and first[-1, -1] < 0.01
    lone = plan_tiles(20, 20, 0, 0)[0]
    assert np.all(blend_window(lone, 20, 20, 8) == 1.0)


def test_order_by_focus_starts_near_focus() -> None:
    tiles = plan_tiles(96, 96, 32, 8, WS)
    ordered = order_by_focus(tiles, (95, 95))
    assert ordered[0].index == len(tiles) - 1 and sorted(t.index for t in ordered) == list(range(len(tiles)))


# --------------------------------------------------------------------------- basics


def test_output_shape_dtype_range(engine: Engine, image: np.ndarray) -> None:
    settings = RunSettings(tile=32, overlap=8)
    result = engine.denoise(image, settings)
    assert result.image.shape == (H, W, 3) and result.image.dtype == np.float32
    assert np.isfinite(result.image).all() and 0 <= result.image.min() <= result.image.max() <= 1
    assert result.std is None and result.input_keep is None and result.keep_maps == {}
    assert result.device == "cpu" and result.settings == settings and result.seconds > 0
    assert str(engine.device) == "cpu" and engine.config == SwinIRConfig.tiny()


def test_grayscale_input_is_repeated_to_rgb(engine: Engine, image: np.ndarray) -> None:
    gray = image[..., 0]
    settings = RunSettings(attn_mask_ratio=0, tile=0)
    out = engine.denoise(gray, settings).image
    assert out.shape == (H, W, 3)
    np.testing.assert_array_equal(out, engine.denoise(np.stack([gray] * 3, -1), settings).image)
    np.testing.assert_array_equal(as_rgb(gray[..., None]), np.stack([gray] * 3, -1))


@pytest.mark.parametrize("size", [(23, 37), (5, 9), (41, 19)])
def test_odd_sizes_equal_the_network_on_the_whole_image(engine: Engine, size: tuple[int, int]) -> None:
    img = np.random.default_rng(1).random((*size, 3), dtype=np.float32)
    out = engine.denoise(img, RunSettings(attn_mask_ratio=0, tile=0, precision="fp32")).image
    with torch.no_grad():
        ref = engine.model(torch.from_numpy(img).permute(2, 0, 1)[None])
    expected = ref[0].clamp(0, 1).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)
    tiled = engine.denoise(img, RunSettings(attn_mask_ratio=0, tile=16, overlap=4)).image
    assert tiled.shape == (*size, 3)


@pytest.mark.parametrize(("bad", "error"), [
    (np.zeros((8, 8, 3), np.uint8), TypeError),
    ([[0.5]], TypeError),
    (np.zeros((8, 8, 4), np.float32), ValueError),
    (np.zeros((2, 8, 8, 3), np.float32), ValueError),
    (np.full((8, 8, 3), np.nan, np.float32), ValueError),
    (np.zeros((2, 2, 3), np.float32), ValueError),
])
def test_bad_images_are_rejected_at_call_time(engine: Engine, bad: object, error: type) -> None:
    with pytest.raises(error):
        engine.run(bad, RunSettings())  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [
    {"attn_mask_ratio": 1.0}, {"input_mask_ratio": -0.1}, {"passes": 0}, {"seed": -1},
    {"tile": 32, "overlap": 32}, {"precision": "fp16"}, {"focus": (1, 2, 3)}, {"tile": 1.5},
])
def test_bad_settings_are_rejected(kwargs: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        RunSettings(**kwargs)


def test_probe_block_out_of_range(engine: Engine, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="probe blocks"):
        engine.denoise(image, RunSettings(probe_blocks=(engine.config.num_blocks,)))


def test_from_file_round_trip(engine: Engine, image: np.ndarray, tmp_path) -> None:
    path = save_weights(engine.model, tmp_path / "tiny.safetensors", card={"note": "test"})
    loaded = Engine.from_file(path, device="cpu")
    assert loaded.source == path and loaded.card["note"] == "test"
    settings = RunSettings(tile=32, overlap=8)
    np.testing.assert_array_equal(loaded.denoise(image, settings).image,
                                  engine.denoise(image, settings).image)


@pytest.mark.filterwarnings("ignore:bf16 was asked for")
def test_bf16_runs_close_to_fp32(engine: Engine, image: np.ndarray) -> None:
    fp32 = engine.denoise(image, RunSettings(attn_mask_ratio=0, tile=0, precision="fp32")).image
    bf16 = engine.denoise(image, RunSettings(attn_mask_ratio=0, tile=0, precision="bf16")).image
    assert bf16.dtype == np.float32 and np.abs(bf16 - fp32).mean() < 0.02


# --------------------------------------------------------------------------- tiling vs whole


def test_tiled_matches_whole_image(engine: Engine) -> None:
    yy, xx = np.mgrid[0:72, 0:88].astype(np.float32)
    clean = np.stack([0.5 + 0.4 * np.sin(xx / 9), 0.5 + 0.4 * np.cos(yy / 7), (xx + yy) / 160], -1)
    noisy = np.clip(clean + np.random.default_rng(2).normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    whole = engine.denoise(noisy, RunSettings(attn_mask_ratio=0, tile=0)).image
    tiled = engine.denoise(noisy, RunSettings(attn_mask_ratio=0, tile=32, overlap=16)).image
    assert n_tiles(72, 88, RunSettings(tile=32, overlap=16)) > 4
    assert np.abs(tiled - whole).max() < 5e-3
    assert psnr(tiled, whole) > 50
    assert abs(psnr(clean, tiled) - psnr(clean, whole)) < 0.05


# --------------------------------------------------------------------------- randomness


def test_seed_reproduces_and_seeds_differ(engine: Engine, image: np.ndarray) -> None:
    base = RunSettings(attn_mask_ratio=0.75, input_mask_ratio=0.3, tile=32, overlap=8, seed=3)
    first = engine.denoise(image, base)
    again = engine.denoise(image, base)
    other = engine.denoise(image, RunSettings(**{**base.__dict__, "seed": 4}))
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.input_keep, again.input_keep)
    assert np.abs(first.image - other.image).max() > 1e-3
    assert not np.array_equal(first.input_keep, other.input_keep)


def test_focus_changes_order_not_result(engine: Engine, image: np.ndarray) -> None:
    plain = RunSettings(tile=16, overlap=4)
    focused = RunSettings(tile=16, overlap=4, focus=(H - 1, W - 1))
    updates = [e for e in events(engine, image, focused) if isinstance(e, TileUpdate)]
    assert (updates[0].y1, updates[0].x1) == (H, W)
    np.testing.assert_allclose(engine.denoise(image, focused).image,
                               engine.denoise(image, plain).image, atol=1e-6)


def test_passes_without_masks_are_run_once(engine: Engine, image: np.ndarray) -> None:
    """Without attention or input masks nothing is random: N passes would be N identical ones."""
    settings = RunSettings(passes=4, tile=0, attn_mask_ratio=0.0, input_mask_ratio=0.0)
    steps = events(engine, image, settings)
    totals = {e.total for e in steps if isinstance(e, Progress)}
    result = steps[-1]
    once = engine.denoise(image, RunSettings(passes=1, tile=0, attn_mask_ratio=0.0))
    assert totals == {1} and np.array_equal(result.image, once.image)
    assert result.std is not None and not result.std.any() and result.std.shape == (H, W, 3)


def test_passes_give_std(engine: Engine, image: np.ndarray) -> None:
    one = engine.denoise(image, RunSettings(passes=1, tile=0))
    three = engine.denoise(image, RunSettings(passes=3, tile=0))
    assert one.std is None
    assert three.std is not None and three.std.shape == (H, W, 3) and three.std.dtype == np.float32
    assert three.std.max() > 1e-4 and np.isfinite(three.std).all()
    assert not np.array_equal(one.image, three.image)


def test_input_mask_is_returned(engine: Engine, image: np.ndarray) -> None:
    result = engine.denoise(image, RunSettings(input_mask_ratio=0.6, attn_mask_ratio=0, tile=32, overlap=8))
    keep = result.input_keep
    assert keep is not None and keep.shape == (H, W) and set(np.unique(keep)) <= {0.0, 1.0}
    assert abs(1 - keep.mean() - 0.6) < 0.05


def test_keep_maps_shape_and_drop_share(engine: Engine) -> None:
    img = np.random.default_rng(3).random((64, 80, 3), dtype=np.float32)
    masked = engine.denoise(img, RunSettings(attn_mask_ratio=0.75, tile=32, overlap=8, probe_blocks=(0, 3)))
    assert sorted(masked.keep_maps) == [0, 3]
    for keep in masked.keep_maps.values():
        assert keep.shape == (64, 80) and keep.dtype == np.uint8 and set(np.unique(keep)) <= {0, 1}
        assert abs(1 - keep.mean() - 0.75) < 0.03
    unmasked = engine.denoise(img, RunSettings(attn_mask_ratio=0, tile=32, overlap=8, probe_blocks=(1,)))
    assert np.all(unmasked.keep_maps[1] == 1)


# --------------------------------------------------------------------------- events


def test_progress_count_and_monotonic(engine: Engine, image: np.ndarray) -> None:
    settings = RunSettings(tile=16, overlap=4, passes=2)
    evs = events(engine, image, settings)
    progress = [e for e in evs if isinstance(e, Progress)]
    total = n_tiles(H, W, settings) * 2
    assert total > 4 and len(progress) == total
    assert [p.done for p in progress] == list(range(1, total + 1))
    assert all(p.total == total and p.message for p in progress)
    assert isinstance(evs[-1], DenoiseResult) and sum(isinstance(e, DenoiseResult) for e in evs) == 1
    updates = [e for e in evs if isinstance(e, TileUpdate)]
    assert len(updates) == n_tiles(H, W, settings) and all(u.pass_index == 0 for u in updates)


def test_cancel_after_second_progress(engine: Engine, image: np.ndarray) -> None:
    seen: list[Progress] = []
    run = engine.run(image, RunSettings(tile=16, overlap=4), cancel=lambda: len(seen) >= 2)
    with pytest.raises(Cancelled):
        for event in run:
            if isinstance(event, Progress):
                seen.append(event)
    assert len(seen) == 2


def test_denoise_reports_progress_and_cancels(engine: Engine, image: np.ndarray) -> None:
    seen: list[Progress] = []
    engine.denoise(image, RunSettings(tile=32, overlap=8), progress=seen.append)
    assert len(seen) == n_tiles(H, W, RunSettings(tile=32, overlap=8))
    with pytest.raises(Cancelled):
        engine.denoise(image, RunSettings(tile=32, overlap=8), cancel=lambda: True)


@pytest.mark.parametrize("focus", [None, (20, 30)])
def test_tile_updates_paint_the_result(engine: Engine, image: np.ndarray, focus) -> None:
    evs = events(engine, image, RunSettings(tile=16, overlap=6, focus=focus))
    canvas = np.zeros((H, W, 3), np.float32)
    for update in (e for e in evs if isinstance(e, TileUpdate)):
        assert update.image.shape == (update.y1 - update.y0, update.x1 - update.x0, 3)
        canvas[update.y0:update.y1, update.x0:update.x1] = update.image
    np.testing.assert_allclose(canvas, evs[-1].image, atol=1e-6)


def test_out_of_memory_retries_with_half_tile(engine: Engine, image: np.ndarray, monkeypatch) -> None:
    original = Engine._denoise_tile
    calls = {"n": 0}

    def flaky(self, x, tile, settings, keep, keep_maps):
        calls["n"] += 1
        if settings.tile == 32:
            raise torch.OutOfMemoryError("simulated")
        return original(self, x, tile, settings, keep, keep_maps)

    monkeypatch.setattr(Engine, "_denoise_tile", flaky)
    evs = events(engine, image, RunSettings(tile=32, overlap=8))
    assert any(isinstance(e, Progress) and e.total == 0 and "16" in e.message for e in evs)
    assert evs[-1].settings.tile == 16 and evs[-1].image.shape == (H, W, 3)


def test_progress_counts_pixels_for_etas(engine: Engine, image: np.ndarray) -> None:
    settings = RunSettings(tile=16, overlap=4, passes=2)
    progress = [e for e in events(engine, image, settings) if isinstance(e, Progress)]
    tiles = plan_tiles(H, W, 16, 4, WS)
    total = 2 * sum(t.shape[0] * t.shape[1] for t in tiles)
    assert all(p.work_total == total for p in progress)
    assert [p.work_done for p in progress] == sorted({p.work_done for p in progress})
    assert progress[-1].work_done == total and progress[-1].fraction == 1.0
    assert progress[0].fraction == pytest.approx(tiles[0].shape[0] * tiles[0].shape[1] / total)
    assert Progress(1, 4, "by tiles").fraction == 0.25 and Progress(0, 0, "retry").fraction == 0.0


def test_preview_paints_a_small_box_near_the_focus_first(engine: Engine) -> None:
    img = np.random.default_rng(4).random((96, 120, 3), dtype=np.float32)
    focus = (70, 90)
    plain = events(engine, img, RunSettings(tile=0, focus=focus))
    evs = events(engine, img, RunSettings(tile=0, focus=focus, preview=16))
    announced, first = evs[0], evs[1]  # said before it is computed, then painted
    assert isinstance(announced, Progress) and announced.work_done == 0
    assert "16 x 16 preview" in announced.message
    assert isinstance(first, TileUpdate) and (first.y1 - first.y0, first.x1 - first.x0) == (16, 16)
    assert first.y0 <= focus[0] < first.y1 and first.x0 <= focus[1] < first.x1
    assert first.y0 % WS == 0 and first.x0 % WS == 0
    assert isinstance(evs[2], Progress) and evs[2].done == 0 and evs[2].work_done == 16 * 16
    assert evs[-2].work_done == evs[-2].work_total == 96 * 120 + 16 * 16
    # Display only: the whole tile follows and paints over it, and the result is the same.
    updates = [e for e in evs if isinstance(e, TileUpdate)]
    whole = updates[1]
    assert len(updates) == 2 and (whole.y0, whole.x0, whole.y1, whole.x1) == (0, 0, 96, 120)
    np.testing.assert_array_equal(evs[-1].image, plain[-1].image)
    # With the tile's masks, the preview agrees with the tile away from its own borders.
    inner = np.s_[first.y0 + 4:first.y1 - 4, first.x0 + 4:first.x1 - 4]
    assert np.abs(updates[1].image[inner] - updates[0].image[4:-4, 4:-4]).mean() < 0.05


def test_preview_is_skipped_when_the_tile_is_small(engine: Engine, image: np.ndarray) -> None:
    evs = events(engine, image, RunSettings(tile=16, overlap=4, preview=12))  # 12x12 of 16x16
    updates = [e for e in evs if isinstance(e, TileUpdate)]
    assert len(updates) == n_tiles(H, W, RunSettings(tile=16, overlap=4))


# --------------------------------------------------------------------------- attention


def test_attention_at_sums_to_one_and_matches_full_probe(engine: Engine, image: np.ndarray) -> None:
    pixel = (21, 30)
    settings = RunSettings(attn_mask_ratio=0, tile=0, precision="fp32")
    for block in (0, 1):
        view = engine.attention_at(image, pixel, block, settings)
        heads = engine.config.num_heads[0]
        assert view.weights.shape == (heads, WS, WS)
        np.testing.assert_allclose(view.weights.sum(axis=(1, 2)), 1.0, atol=1e-5)
        y0, x0, y1, x1 = view.crop
        assert view.keep_map.shape == (y1 - y0, x1 - x0) and np.all(view.keep_map == 1)
        assert pixel in set(zip(view.key_rows.ravel().tolist(), view.key_cols.ravel().tolist(), strict=True))
        probe = ProbeRequest(attention_blocks=(block,), query_pixels=(pixel,))
        with torch.no_grad():
            _, found = engine.model(torch.from_numpy(image).permute(2, 0, 1)[None], probe=probe)
        np.testing.assert_allclose(view.weights, found.attention[0].weights[0].numpy(), atol=1e-5)


def test_attention_at_uses_the_runs_keep_map(engine: Engine, image: np.ndarray) -> None:
    settings = RunSettings(attn_mask_ratio=0.75, tile=32, overlap=8, seed=5, probe_blocks=(2,))
    full = engine.denoise(image, settings).keep_maps[2]
    view = engine.attention_at(image, (10, 12), 2, settings, context=1)
    y0, x0, y1, x1 = view.crop
    np.testing.assert_array_equal(view.keep_map, full[y0:y1, x0:x1])
    np.testing.assert_allclose(view.weights.sum(axis=(1, 2)), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        engine.attention_at(image, (H, 0), 0, settings)
