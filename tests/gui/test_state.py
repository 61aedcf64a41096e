"""The Qt-free parts: document, pixel arithmetic, samples, catalog, sweep levels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mdn_gui import catalog as cat
from mdn_gui.compose import compose_export, difference, heatmap, nice_scale, overlay_mask
from mdn_gui.controllers.analysis import centre_crop, sweep_levels
from mdn_gui.samples import SAMPLES, load_sample, make_chart
from mdn_gui.state import CLEAN, MASKED, NOISY, Document, Metrics


def test_mdn_gui_core_modules_do_not_import_qt() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import mdn_gui.state, mdn_gui.compose, mdn_gui.samples, mdn_gui.classical; "
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'qtawesome'))]; "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_document_events_and_fallbacks() -> None:
    doc = Document()
    seen: list[str] = []
    doc.layers_changed.connect(seen.append)
    doc.set_source("chart", make_chart(32))
    assert doc.has_clean and doc.ordered_keys() == [CLEAN]
    doc.set_layer(NOISY, np.zeros((32, 32, 3), np.float32), label="noisy")
    assert doc.shown_pair() == (NOISY, NOISY)  # B (masked) does not exist yet
    doc.set_layer(MASKED, np.ones((32, 32, 3), np.float32), label="masked")
    assert doc.shown_pair() == (NOISY, MASKED)
    assert seen == [NOISY, MASKED]
    version = doc.layers[MASKED].version
    assert doc.set_metrics(MASKED, version, Metrics(30.0, 0.9))
    assert not doc.set_metrics(MASKED, version - 1, Metrics(1.0))  # stale version ignored
    doc.paste_tile(MASKED, (0, 0, 8, 8), np.zeros((8, 8, 3), np.float32))
    assert doc.layers[MASKED].image[:8, :8].max() == 0 and doc.layers[MASKED].version > version
    with pytest.raises(ValueError):
        doc.update_view(mode="sideways")


def test_noisy_photo_has_no_clean_layer_and_no_metrics() -> None:
    doc = Document()
    doc.set_source("photo", make_chart(32), noisy=True)
    assert doc.clean is None and doc.noisy is not None and not doc.has_clean
    assert not doc.set_metrics(NOISY, doc.layers[NOISY].version, Metrics(20.0))


def test_difference_heatmap_and_scale() -> None:
    a = np.zeros((4, 4, 3), np.float32)
    b = np.full((4, 4, 3), 0.1, np.float32)
    diff = difference(b, a)
    assert diff.shape == (4, 4) and np.allclose(diff, 0.1)
    vmax = nice_scale(diff)
    assert vmax * 255 == pytest.approx(50.0)  # the next round number above 25.5 levels
    lut = np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8)
    assert heatmap(diff, 0.2, lut).shape == (4, 4, 3)
    with pytest.raises(ValueError):
        difference(a, np.zeros((2, 2, 3), np.float32))


def test_compose_export_modes() -> None:
    a = np.zeros((10, 20, 3), np.float32)
    b = np.ones((10, 20, 3), np.float32)
    split = compose_export("split", a, b, split_column=5)
    assert split.shape == (10, 20, 3) and split[0, 0, 0] == 0 and split[0, 19, 0] == 255
    assert compose_export("side", a, b, separator=4).shape == (10, 44, 3)
    assert compose_export("diff", a, b).shape == (10, 20, 3)
    tinted = overlay_mask(b, np.zeros((10, 20), np.uint8))
    assert tinted[..., 1].max() < 1.0


def test_samples_load_without_download() -> None:
    for name in ("chart", "chelsea"):
        image = load_sample(name)
        assert image.dtype == np.float32 and image.ndim == 3 and 0 <= image.min() and image.max() <= 1
    assert set(SAMPLES) >= {"astronaut", "chelsea", "coffee", "rocket", "chart"}
    with pytest.raises(ValueError, match="unknown sample"):
        load_sample("nope")


def test_training_ratio_comes_from_the_model_card(tmp_path) -> None:
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"")
    assert cat.training_ratio("baseline", weights) == 0.0
    weights.with_suffix(".json").write_text(json.dumps({"train_config": {"attn_mask_ratio": 0.5}}))
    assert cat.training_ratio("masked", weights) == 0.5
    catalog = cat.ModelCatalog()
    assert not catalog.available("masked") and "not found" in catalog.why_unavailable("masked")
    assert catalog.available("nlm")


def test_sweep_levels_stay_in_range() -> None:
    for kind in ("gaussian", "poisson", "jpeg", "mixture", "salt-pepper"):
        levels = sweep_levels(kind)
        assert len(levels) >= 2 and levels == tuple(sorted(levels))
    assert all(float(v).is_integer() for v in sweep_levels("jpeg"))
    assert centre_crop(np.zeros((10, 30, 3)), 8).shape == (8, 8, 3)
