"""Tests of the evaluation protocol (model_core.eval): the grid, seeding, methods, reports, CLI."""

from __future__ import annotations

import io
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model_core.eval import (
    BM3DMethod,
    EvalProgress,
    NetworkMethod,
    NLMMethod,
    NoisyMethod,
    Row,
    SkippedImageWarning,
    evaluate,
    known_sigma,
    list_images,
    make_method,
    markdown_tables,
    noise_seed,
    write_json,
    write_markdown,
    write_plot,
)
from model_core.eval import cli as eval_cli
from model_core.eval.cli import main
from model_core.eval.report import plot_figure
from model_core.imageio import write_image
from model_core.network import SwinIRConfig, build_model
from model_core.network.checkpoint import save_weights
from model_core.noise import NoiseSpec
from tests.conftest import ClosedPipe

G15, G25, P25 = NoiseSpec("gaussian", 15), NoiseSpec("gaussian", 25), NoiseSpec("poisson", 2.5)
ROW_FIELDS = {"dataset", "noise", "level", "method", "psnr", "ssim", "n_images"}


def textured_grey(h: int, w: int, seed: int) -> np.ndarray:
    """Mid-grey image with smooth texture, far from 0 and 1 so that noise is not clipped."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = np.random.default_rng(seed).uniform(0, 6, 3).astype(np.float32)
    return np.stack([0.5 + 0.15 * np.sin(xx / 5 + p) * np.cos(yy / 7 - p) for p in phase], axis=2)


def make_folder(root: Path, name: str, stems: list[str], h: int = 40, w: int = 48) -> Path:
    folder = root / name
    folder.mkdir()
    for i, stem in enumerate(stems):
        write_image(folder / f"{stem}.png", textured_grey(h, w, i))
    return folder


@dataclass
class Recorder:
    """A fake method that records the inputs it is given and returns them."""

    name: str
    seen: list[tuple[str, bytes]] = field(default_factory=list)

    def denoise(self, noisy: np.ndarray, spec: NoiseSpec, sigma: float | None = None) -> np.ndarray:
        self.seen.append((str(spec), noisy.tobytes()))
        noisy[...] = 0.0  # a badly behaved method must not change what the next one sees
        return np.full_like(noisy, 0.5)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny workloads run fastest on one thread, and far faster on a busy machine."""
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("data"), "Tiny", ["b", "a"])


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    model = build_model(SwinIRConfig.tiny())
    save_weights(model, folder / "baseline.safetensors", card={"train_config": {"attn_mask_ratio": 0.0}})
    return save_weights(model, folder / "tiny.safetensors", card={"name": "tiny"})


# --------------------------------------------------------------------------- the grid


def test_grid_has_one_row_per_dataset_spec_method(data: Path, tmp_path: Path) -> None:
    other = make_folder(tmp_path, "Other", ["x"])
    methods = [NoisyMethod(), NLMMethod(), Recorder("fake")]
    events: list[EvalProgress] = []
    rows = evaluate([data, other], methods, [G15, P25], seed=3, progress=events.append)
    assert len(rows) == 2 * 2 * 3
    assert [(r.dataset, str(r.spec), r.method) for r in rows[:3]] == [
        ("Tiny", "gaussian:15", "noisy"), ("Tiny", "gaussian:15", "nlm"), ("Tiny", "gaussian:15", "fake")]
    assert {(r.dataset, r.n_images) for r in rows} == {("Tiny", 2), ("Other", 1)}
    for row in rows:
        assert set(row.to_dict()) == ROW_FIELDS
        assert math.isfinite(row.psnr) and 0.0 < row.ssim <= 1.0
    assert [e.done for e in events] == list(range(1, 3 * 2 * 3 + 1))
    assert events[-1].total == 3 * 2 * 3


def test_grid_rejects_repeated_names(data: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        evaluate([data], [NoisyMethod(), NoisyMethod()], [G15])
    with pytest.raises(ValueError, match="unique"):
        evaluate([data], [NoisyMethod()], [G15, NoiseSpec.parse("gaussian:15")])


@dataclass
class Broken:
    """A fake method whose output is not finite, as a network with overflowing weights."""

    name: str = "broken"
    calls: int = 0

    def denoise(self, noisy: np.ndarray, spec: NoiseSpec, sigma: float | None = None) -> np.ndarray:
        self.calls += 1
        return np.full_like(noisy, np.nan)


def test_a_method_with_non_finite_output_stops_the_evaluation(data: Path) -> None:
    broken = Broken()
    with pytest.raises(ValueError, match=r"method 'broken' gave NaN or infinite values for Tiny/a\.png"):
        evaluate([data], [NoisyMethod(), broken], [G15, P25])
    assert broken.calls == 1


@dataclass
class Tinter:
    """A fake method that tints its input: red up, green down, the mean of the channels kept."""

    name: str = "tinter"

    def denoise(self, noisy: np.ndarray, spec: NoiseSpec, sigma: float | None = None) -> np.ndarray:
        out = noisy.astype(np.float32, copy=True)
        out[..., 0] += 0.04
        out[..., 1] -= 0.04
        return out


def test_grey_images_get_grey_noise_and_are_scored_as_grey(tmp_path: Path) -> None:
    folder = tmp_path / "Grey"
    folder.mkdir()
    for i in range(2):
        write_image(folder / f"g{i}.png", textured_grey(40, 48, i)[..., 0])
    recorder = Recorder("recorder")
    rows = evaluate([folder], [NoisyMethod(), Tinter(), recorder], [G15, P25], seed=2)
    for _, data in recorder.seen:
        noisy = np.frombuffer(data, np.float32).reshape(40, 48, 3)
        assert np.array_equal(noisy[..., 0], noisy[..., 1]) and np.array_equal(noisy[..., 1], noisy[..., 2])
    by_method = {(row.method, str(row.spec)): row for row in rows}
    for spec in ("gaussian:15", "poisson:2.5"):
        noisy_row, tinted = by_method["noisy", spec], by_method["tinter", spec]
        assert tinted.psnr == pytest.approx(noisy_row.psnr, abs=0.05)  # the tint is not scored
        assert tinted.ssim == pytest.approx(noisy_row.ssim, abs=1e-3)


# --------------------------------------------------------------------------- seeding


def test_every_method_gets_the_same_noisy_image(data: Path) -> None:
    first, second = Recorder("one"), Recorder("two")
    evaluate([data], [first, second], [G15, P25], seed=7)
    assert len(first.seen) == 4
    assert first.seen == second.seen
    assert len({b for _, b in first.seen}) == 4  # different per image and per spec


def test_noise_is_the_same_in_two_runs_and_any_grid(data: Path) -> None:
    once, again = Recorder("r"), Recorder("r")
    rows = evaluate([data], [NoisyMethod(), once], [G15, P25], seed=1)
    rows_again = evaluate([data], [again, NoisyMethod()], [P25], seed=1)
    assert len(again.seen) == 2
    assert again.seen == [s for s in once.seen if s[0] == "poisson:2.5"]
    noisy = {(r.spec, r.method): r for r in rows}[(P25, "noisy")]
    assert noisy == {(r.spec, r.method): r for r in rows_again}[(P25, "noisy")]
    other_seed = evaluate([data], [NoisyMethod()], [P25], seed=2)[0]
    assert other_seed.psnr != noisy.psnr


def test_noise_seed_depends_on_seed_image_and_spec_only() -> None:
    base = noise_seed(0, "a.png", G15)
    assert base == noise_seed(0, "a.png", NoiseSpec.parse("gaussian:15.0"))
    assert len({base, noise_seed(1, "a.png", G15), noise_seed(0, "b.png", G15),
                noise_seed(0, "a.png", G25)}) == 4
    assert 0 <= base < 2**63


def test_noisy_psnr_matches_gaussian_sigma(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "Grey", ["g"], 64, 64)
    row = evaluate([folder], [NoisyMethod()], [G15])[0]
    assert row.psnr == pytest.approx(20 * math.log10(255 / 15), abs=0.3)


# --------------------------------------------------------------------------- methods


def test_classical_methods_beat_the_noisy_input(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "Small", ["s"], 32, 32)
    rows = evaluate([folder], [NoisyMethod(), NLMMethod(), BM3DMethod()], [G25])
    score = {r.method: r.psnr for r in rows}
    assert score["nlm"] > score["noisy"] + 1.0
    assert score["bm3d"] > score["noisy"] + 1.0


def test_known_sigma_is_nominal_for_gaussian_and_measured_otherwise() -> None:
    clean = textured_grey(32, 32, 0)
    noisy = clean + np.float32(0.1)
    assert known_sigma(G25, noisy, clean) == pytest.approx(25 / 255)
    assert known_sigma(P25, noisy, clean) == pytest.approx(0.0, abs=1e-6)
    assert NLMMethod().strength(25 / 255) == pytest.approx(0.7 * 25)
    assert NLMMethod().strength(0.0) == 1.0


def test_make_method_reads_the_mask_ratio_from_the_model_card(
    weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MDN_WEIGHTS_DIR", str(weights.parent))
    baseline = make_method("baseline", device="cpu", passes=2, tile=0, seed=5)
    tiny = make_method(str(weights), device="cpu")
    forced = make_method("baseline", device="cpu", attn_mask=0.5, label="b50")
    assert isinstance(baseline, NetworkMethod) and isinstance(tiny, NetworkMethod)
    assert isinstance(forced, NetworkMethod)
    assert (baseline.name, baseline.settings.attn_mask_ratio) == ("baseline", 0.0)
    assert (baseline.settings.passes, baseline.settings.tile, baseline.settings.seed) == (2, 0, 5)
    assert (tiny.name, tiny.settings.attn_mask_ratio) == ("tiny", 0.75)
    assert (forced.name, forced.settings.attn_mask_ratio) == ("b50", 0.5)
    assert baseline.settings.input_mask_ratio == 0.0
    assert make_method("baseline", device="cpu", input_mask=0.85).settings.input_mask_ratio == 0.85
    assert make_method("bm3d").name == "bm3d" and make_method("nlm", label="n").name == "n"
    with pytest.raises(FileNotFoundError):
        make_method(weights.parent / "missing.safetensors")


# --------------------------------------------------------------------------- files


def test_limit_takes_the_first_files_by_name(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "Three", ["c", "a", "b"])
    assert [p.name for p in list_images(folder, 2)] == ["a.png", "b.png"]
    recorder = Recorder("r")
    rows = evaluate([folder], [recorder], [G15], limit=2)
    assert rows[0].n_images == 2 and len(recorder.seen) == 2
    with pytest.raises(ValueError, match="limit"):
        list_images(folder, 0)


def test_corrupt_image_is_skipped_with_a_warning(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, "Broken", ["a"])
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (folder / "notes.txt").write_text("not an image, not counted")
    events: list[EvalProgress] = []
    with pytest.warns(SkippedImageWarning, match="b.png"):
        rows = evaluate([folder], [NoisyMethod()], [G15, G25], progress=events.append)
    assert [r.n_images for r in rows] == [1, 1]
    assert events[-1].done == events[-1].total == 4


# --------------------------------------------------------------------------- reports and CLI


def sample_rows() -> list[Row]:
    return [Row("Set", kind, level, method, 20.0 + level / 10 + k, 0.5, 2)
            for kind, level in (("gaussian", 15.0), ("gaussian", 25.0), ("poisson", 2.5))
            for k, method in enumerate(("noisy", "nlm"))]


def test_reports_are_written_once(tmp_path: Path) -> None:
    rows = sample_rows()
    paths = (tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r.png")
    for writer, path in zip((write_json, write_markdown, write_plot), paths, strict=True):
        writer(rows, path)
        with pytest.raises(FileExistsError):
            writer(rows, path)
        writer(rows, path, overwrite=True)
    loaded = json.loads(paths[0].read_text())
    assert len(loaded) == 6 and set(loaded[0]) == ROW_FIELDS
    assert "| gaussian:25 | 22.50 / 0.5000 | **23.50** / 0.5000 |" in paths[1].read_text()
    assert paths[2].read_bytes().startswith(b"\x89PNG") and paths[2].stat().st_size > 5000
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_plot_ticks_are_the_measured_levels() -> None:
    rows = sample_rows() + [Row("Set", "salt-pepper", 0.002, "noisy", 30.0, 0.9, 2)]
    axes = {ax.get_title(): ax for ax in plot_figure(rows).axes}
    ticks = {title: [t.get_text() for t in ax.get_xticklabels()] for title, ax in axes.items()}
    assert ticks == {"Set: gaussian": ["15", "25"], "Set: poisson": ["2.5"], "Set: salt-pepper": ["0.002"]}
    low, high = axes["Set: salt-pepper"].get_xlim()
    assert low < 0.002 < high and high - low == pytest.approx(0.002)


def test_markdown_has_one_table_per_dataset() -> None:
    rows = sample_rows() + [Row("Other", "gaussian", 15.0, "noisy", math.nan, math.nan, 0)]
    text = markdown_tables(rows)
    assert text.count("| noise |") == 2 and "### Other (0 images)" in text and "n/a" in text


def test_cli_runs_and_refuses_to_overwrite(
    data: Path, weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    argv = ["--data", str(data), "--method", "noisy", "--method", f"mine={weights}",
            "--noise", "gaussian:15", "--noise", "speckle:0.024", "--limit", "1", "--device", "cpu",
            "--tile", "32", "--json", str(out / "r.json"), "--markdown", str(out / "r.md"),
            "--plot", str(out / "r.png"), "--no-progress"]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "| noise | noisy | mine |" in stdout and "speckle:0.024" in stdout
    rows = json.loads((out / "r.json").read_text())
    assert len(rows) == 4 and {r["n_images"] for r in rows} == {1}
    dropped = [*argv[:4], "--method", f"mine={weights}", *argv[6:8], *argv[10:16], "--json",
               str(out / "dropped.json"), "--input-mask", "0.5", "--no-progress"]
    assert main(dropped) == 0
    (mine,) = [r for r in json.loads((out / "dropped.json").read_text()) if r["method"] == "mine"]
    (full,) = [r for r in rows if r["method"] == "mine" and r["noise"] == "gaussian"]
    assert mine["noise"] == "gaussian" and mine["psnr"] != full["psnr"]
    before = (out / "r.json").read_bytes()
    assert main(argv) == 1
    assert "exists" in capsys.readouterr().err
    assert (out / "r.json").read_bytes() == before
    assert main([*argv[:4], *argv[6:], "--overwrite"]) == 0  # noisy only, replacing the files
    assert "mine" not in (out / "r.md").read_text()
    assert main(["--data", str(data), "--method", "nope.safetensors", "--json", str(out / "x.json")]) == 1
    assert main(["--data", str(data), "--method", "noisy", "--noise", "gaussian:-3",
                 "--json", str(out / "x.json")]) == 2


class Terminal(io.StringIO):
    """A stderr that says it is a terminal (tqdm draws its bar only on one)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_progress_bar_on_a_terminal_moves_inside_a_run(
    data: Path, weights: Path, tmp_path: Path, quiet: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: progress everywhere. The bar counts runs (image x noise x method) with an ETA
    and, inside a network's run, the share of its tiles done."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(eval_cli, "REDRAW_SECONDS", 0.0)  # draw every update, however quick
    argv = ["--data", str(data), "--method", f"mine={weights}", "--noise", "gaussian:15", "--limit", "1",
            "--device", "cpu", "--tile", "16", "--json", str(tmp_path / "r.json")]
    assert main(argv + (["--no-progress"] if quiet else [])) == 0
    drawn = terminal.getvalue()
    if quiet:
        assert "run" not in drawn and "%" not in drawn
    else:
        assert "1/1" in drawn and "run" in drawn and "<" in drawn  # [elapsed<remaining]
        assert re.search(r"\b[1-9]\d?%\|[^|]*\| 0/1 ", drawn), drawn  # a share of the one run


def test_make_method_passes_tile_progress_and_defaults_to_auto_tiles(weights: Path) -> None:
    seen = []
    method = make_method(str(weights), device="cpu", tile=16, progress=seen.append)
    assert isinstance(method, NetworkMethod)
    method.denoise(np.zeros((24, 40, 3), np.float32), NoiseSpec("gaussian", 15))
    assert len(seen) > 1 and seen[-1].done == seen[-1].total
    auto = make_method(str(weights), device="cpu")
    assert isinstance(auto, NetworkMethod) and auto.settings.tile == 0


def test_cli_refuses_results_without_a_readable_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "r.json"
    argv = ["--data", str(folder), "--method", "noisy", "--noise", "gaussian:25", "--limit", "1",
            "--json", str(out), "--no-progress"]
    assert main(argv) == 1
    assert "no image of set could be read" in capsys.readouterr().err
    assert not out.exists()


def test_cli_usage_errors_are_one_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--data", str(data), "--json", str(tmp_path / "r.json")]
    assert main([*base, "--method", "noisy", "--limit", "abc"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "expected an integer" in err
    assert main([*base, "--method", "noisy", "--plot", str(tmp_path / "fig.txt")]) == 2
    assert ".png" in capsys.readouterr().err and not (tmp_path / "fig.txt").exists()
    assert main([*base, "--method", "nope"]) == 1
    assert "masked, baseline, noisy, bm3d, nlm" in capsys.readouterr().err


def test_cli_checks_its_outputs_before_any_work(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--data", str(data), "--method", "noisy", "--noise", "gaussian:25", "--no-progress"]
    assert main([*base, "--json", str(tmp_path), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is a folder" in err
    if Path("/proc/self").is_dir():  # a folder where no file can be created, even by root
        assert main([*base, "--json", "/proc/self/r.json"]) == 1
        err = capsys.readouterr().err
        assert "cannot write to /proc/self" in err and "[Errno" not in err and "|" not in err


def test_cli_prints_the_results_even_when_writing_fails(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("model_core.eval.cli.write_json", disk_full)
    argv = ["--data", str(data), "--method", "noisy", "--noise", "gaussian:25", "--no-progress",
            "--json", str(tmp_path / "r.json")]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "| gaussian:25 |" in captured.out  # the hours of work are not lost
    assert captured.err.strip() == "mdn eval: error: No space left on device"


def test_cli_writes_its_files_when_stdout_is_closed(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    argv = ["--data", str(data), "--method", "noisy", "--noise", "gaussian:25", "--no-progress",
            "--json", str(tmp_path / "r.json")]
    assert main(argv) == 0
    assert json.loads((tmp_path / "r.json").read_text())[0]["method"] == "noisy"
    err = capsys.readouterr().err
    assert "error" not in err and "wrote" in err


def test_cli_repeated_labels_are_a_usage_error(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data", str(data), "--method", "noisy", "--method", "noisy", "--json", str(tmp_path / "r.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "labelled noisy" in err and "--help" in err
    assert main([*argv[:4], "--device", "gpu", "--json", str(tmp_path / "r.json")]) == 2


@pytest.mark.skipif(sys.platform != "linux", reason="needs file names that are not UTF-8")
def test_cli_data_set_name_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path, "caf\udce9", ["a"])
    out = tmp_path / "r.json"
    argv = ["--data", str(folder), "--method", "noisy", "--noise", "gaussian:25", "--no-progress",
            "--json", str(out), "--markdown", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.png")]
    assert main(argv) == 0, capsys.readouterr().err
    assert "caf\\udce9" in capsys.readouterr().out and json.loads(out.read_text())[0]["n_images"] == 1
    assert "caf\\udce9" in (tmp_path / "r.md").read_text() and (tmp_path / "r.png").is_file()


def test_a_file_is_not_a_data_set(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=r"a\.png is a file, not a data set folder"):
        list_images(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError, match="no such data set folder"):
        list_images(tmp_path / "missing")


def test_cli_repeated_data_sets_or_noises_are_usage_errors(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--method", "noisy", "--json", str(tmp_path / "r.json")]
    assert main([*base, "--data", str(data), "--data", str(data)]) == 2
    assert "--data" in capsys.readouterr().err
    assert main([*base, "--data", str(data), "--noise", "gaussian:5", "--noise", "gaussian:5.0"]) == 2
    assert "gaussian:5" in capsys.readouterr().err and not (tmp_path / "r.json").exists()
