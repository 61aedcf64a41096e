"""``mdn eval --grid paper`` and the paper's figure (``--plot FILE.png --paper``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_core.eval import Row
from model_core.eval.cli import build_parser, main
from model_core.eval.figure import paper_figure, pooled, write_paper_plot
from model_core.eval.paper import PAPER_KINDS, paper_curve, paper_grid
from model_core.imageio import write_image
from tests.core.test_eval import textured_grey


def rows_on_the_paper_grid(datasets: dict[str, int]) -> list[Row]:
    return [Row(name, s.kind, s.level, method, 20.0 + k + len(name), 0.5 + k / 10, n)
            for name, n in datasets.items() for s in paper_grid()
            for k, method in enumerate(("noisy", "mine"))]


def test_pooled_means_weigh_each_dataset_by_its_images() -> None:
    rows = rows_on_the_paper_grid({"A": 1, "BBB": 3})  # PSNR 21 on A, 23 on BBB for noisy
    curves = pooled(rows)
    level, psnr, ssim = curves[("noisy", "poisson")][0]
    assert level == 2 and psnr == pytest.approx((21 * 1 + 23 * 3) / 4) and ssim == pytest.approx(0.5)
    assert [p[0] for p in curves[("mine", "mixture")]] == [1, 2, 3, 4, 5]


def test_the_figure_has_the_papers_layout_and_its_dashed_curves() -> None:
    fig = paper_figure(rows_on_the_paper_grid({"Set": 2}))
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [*PAPER_KINDS, *(f"{k}: SSIM" for k in PAPER_KINDS)]
    psnr_axes = {ax.get_title(): ax for ax in axes[:4]}
    for kind, ax in psnr_axes.items():
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert {"noisy", "mine", "paper: masked", "paper: baseline"} <= set(lines)
        assert lines["paper: masked"].get_linestyle() == "--" and lines["mine"].get_linestyle() == "-"
        assert list(lines["paper: baseline"].get_ydata()) == [p.baseline for p in paper_curve(kind)]
    for ax in axes[4:]:  # the paper gives no SSIM: no dashed curve there
        assert {line.get_label() for line in ax.get_lines()} == {"noisy", "mine"}
    plain = paper_figure(rows_on_the_paper_grid({"Set": 2}), paper=False)
    assert not any(line.get_label().startswith("paper") for ax in plain.axes for line in ax.get_lines())


def test_the_figure_needs_a_paper_noise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="correlated"):
        paper_figure([Row("Set", "gaussian", 15.0, "noisy", 25.0, 0.6, 1)])
    path = write_paper_plot(rows_on_the_paper_grid({"Set": 1}), tmp_path / "f.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_grid_paper_runs_exactly_the_19_points(tmp_path: Path) -> None:
    data = tmp_path / "Set"
    data.mkdir()
    write_image(data / "a.png", textured_grey(24, 24, 0))
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    argv = ["--data", str(data), "--method", "noisy", "--grid", "paper", "--json", str(out),
            "--plot", str(plot), "--paper", "--no-progress"]
    assert main(argv) == 0
    rows = json.loads(out.read_text())
    assert [(r["noise"], r["level"]) for r in rows] == [(s.kind, s.level) for s in paper_grid()]
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "19 points" in " ".join(build_parser().format_help().split())


@pytest.mark.parametrize("extra", [["--noise", "gaussian:15", "--grid", "paper"], ["--paper"]])
def test_conflicting_options_are_usage_errors(tmp_path: Path, extra: list[str]) -> None:
    data = tmp_path / "Set"
    data.mkdir()
    write_image(data / "a.png", textured_grey(24, 24, 0))
    argv = ["--data", str(data), "--method", "noisy", "--json", str(tmp_path / "r.json"), *extra]
    assert main(argv) == 2
    assert not (tmp_path / "r.json").exists()
