"""The feature probe, the distribution distance and ``mdn features``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from model_core.features import (
    FeaturesCancelled,
    deep_features,
    feature_distance,
    feature_reports,
    histograms,
    shared_edges,
    subsample,
    wasserstein1,
)
from model_core.features_cli import main
from model_core.imageio import write_image
from model_core.network import SwinIRConfig, build_model
from model_core.network.checkpoint import save_weights
from model_core.network.swinir import ProbeRequest


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(SwinIRConfig.tiny()).eval()


def image(h: int = 20, w: int = 28, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 0.8, (h, w, 3)).astype(np.float32)


# --------------------------------------------------------------------------- the probe


@pytest.mark.parametrize("grad", [False, True])
def test_the_probe_returns_each_groups_features_and_leaves_the_output_alone(model, grad: bool) -> None:
    x = torch.from_numpy(image()).permute(2, 0, 1)[None]  # 20x28: padded to the window size inside
    groups = tuple(range(len(model.cfg.depths)))
    with torch.set_grad_enabled(grad):
        plain = model(x, 0.5, torch.Generator().manual_seed(3))
        request = ProbeRequest(feature_groups=groups)
        out, found = model(x, 0.5, torch.Generator().manual_seed(3), probe=request)
    torch.testing.assert_close(out, plain, rtol=0, atol=0)
    assert sorted(found.features) == list(groups)
    for feats in found.features.values():
        assert feats.shape == (1, model.cfg.embed_dim, 20, 28) and not feats.requires_grad
    assert not torch.equal(found.features[0], found.features[groups[-1]])


def test_no_features_are_kept_unless_asked(model) -> None:
    x = torch.from_numpy(image()).permute(2, 0, 1)[None]
    with torch.no_grad():
        _, found = model(x, probe=ProbeRequest(keep_map_blocks=(0,)))
    assert found.features == {}
    with pytest.raises(ValueError, match="feature_groups"):
        model(x, probe=ProbeRequest(feature_groups=(len(model.cfg.depths),)))


def test_deep_features_counts_groups_from_the_end(model) -> None:
    last = deep_features(model, image(), -1, 0.0)
    assert last.shape == (model.cfg.embed_dim, 20, 28) and last.dtype == np.float32
    np.testing.assert_array_equal(last, deep_features(model, image(), len(model.cfg.depths) - 1, 0.0))
    with pytest.raises(ValueError, match="group"):
        deep_features(model, image(), 99)


# --------------------------------------------------------------------------- the distance


def test_wasserstein_of_identical_and_shifted_samples() -> None:
    values = np.random.default_rng(0).normal(0, 2, 5000)
    assert wasserstein1(values, values) == 0.0
    assert wasserstein1(values, values + 0.7) == pytest.approx(0.7)
    assert wasserstein1([0.0, 1.0], [0.0, 3.0]) == pytest.approx(1.0)  # half the mass moves by 2
    assert wasserstein1([0.0], [0.0, 0.0, 1.0]) == pytest.approx(1 / 3)  # samples of other sizes


def test_the_distance_is_the_mean_shift_in_reference_stds() -> None:
    ref = np.random.default_rng(1).normal(0, 2, 4000)
    samples = {"gaussian:15": ref, "a": ref + 1.0, "b": ref - 3.0, "same": ref.copy()}
    distance, each = feature_distance(samples)
    std = ref.std()
    assert each == pytest.approx({"a": 1 / std, "b": 3 / std, "same": 0.0})
    assert distance == pytest.approx((4 / std) / 3)
    scaled, _ = feature_distance({k: 10 * v for k, v in samples.items()})  # scale-free
    assert scaled == pytest.approx(distance)
    assert np.isnan(feature_distance({"gaussian:15": ref})[0])
    with pytest.raises(ValueError, match="spread"):
        feature_distance({"gaussian:15": np.ones(10), "a": np.zeros(10)})


def test_shared_edges_histograms_and_subsamples() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 10_000), rng.normal(3, 1, 10_000)
    edges = shared_edges([a, b], bins=50)
    assert len(edges) == 51 and edges[0] < a.mean() and edges[-1] > b.mean()
    dens = histograms({"a": a, "b": b}, edges)
    for values in dens.values():
        assert sum(v * w for v, w in zip(values, np.diff(edges), strict=True)) == pytest.approx(1, abs=0.01)
    big = np.arange(1000.0)
    one, two = subsample(big, 100, 5), subsample(big + 1, 100, 5)
    assert one.size == 100 and np.array_equal(one + 1, two)  # the same positions for every array
    assert subsample(big, 5000).size == 1000


def test_reports_of_two_models(model) -> None:
    torch.manual_seed(1)
    other = build_model(SwinIRConfig.tiny()).eval()
    seen = []
    reports = feature_reports([("baseline", other, 0.0), ("masked", model, 0.75)], image(24, 24),
                              ("gaussian:15", "poisson:2.5", "speckle:0.024"), bins=30, progress=seen.append)
    assert [r.label for r in reports] == ["baseline", "masked"] and seen[-1].done == seen[-1].total == 6
    for r in reports:
        assert set(r.histograms) == {"gaussian:15", "poisson:2.5", "speckle:0.024"}
        assert len(r.edges) == 31 and all(len(h) == 30 for h in r.histograms.values())
        assert set(r.distances) == {"poisson:2.5", "speckle:0.024"} and r.distance > 0
        assert r.distance == pytest.approx(np.mean(list(r.distances.values())))
    with pytest.raises(FeaturesCancelled):
        feature_reports([("m", model, 0.0)], image(), cancel=lambda: True)
    with pytest.raises(ValueError, match="gaussian:15"):
        feature_reports([("m", model, 0.0)], image(), ("poisson:2.5",))


# --------------------------------------------------------------------------- the command


def test_the_command_writes_the_plot_and_the_json(model, tmp_path: Path, capsys) -> None:
    weights = save_weights(model, tmp_path / "tiny.safetensors", {"name": "tiny"})
    picture = write_image(tmp_path / "clean.png", image(40, 36))
    plot, data = tmp_path / "f.png", tmp_path / "f.json"
    argv = [str(picture), "--weights", f"a={weights}", "--weights", f"b={weights}", "--noise", "poisson:3",
            "--layer", "0", "--crop", "32", "--device", "cpu", "--plot", str(plot), "--json", str(data)]
    assert main(argv) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    loaded = json.loads(data.read_text())
    assert loaded["size"] == [32, 32] and [m["label"] for m in loaded["models"]] == ["a", "b"]
    first = loaded["models"][0]
    assert first["group"] == 0 and set(first["histograms"]) == {"gaussian:15", "poisson:3"}
    assert len(first["edges"]) == len(first["histograms"]["poisson:3"]) + 1
    assert first["distance"] == pytest.approx(first["distances"]["poisson:3"])
    assert "a: D = " in capsys.readouterr().out
    assert main(argv) == 1  # no overwrite unasked
    assert main([str(picture), "--weights", str(weights)]) == 2  # no output asked for


def test_mdn_lists_and_runs_the_command(capsys) -> None:
    from model_core import cli

    assert cli.main(["--help"]) == 0
    assert "features" in capsys.readouterr().out
    assert cli.main(["features", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "usage: mdn features" in text and "1-Wasserstein" in text
