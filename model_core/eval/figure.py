"""The paper's figure from ``mdn eval`` results: PSNR and SSIM against level, four unseen noises.

Four columns in the paper's order (correlated, speckle, Poisson, mixture), PSNR on the first
row and SSIM on the second; one solid line per method (the noisy input included, as any
method) and, with ``paper=True``, the paper's masked and baseline readings as dashed lines
named "paper: masked" and "paper: baseline" (PSNR only: the paper's figure gives no SSIM).
Drawn on Matplotlib's Agg canvas without pyplot, as :mod:`model_core.eval.report` does.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_core.eval.paper import PAPER_KINDS, paper_curve
from model_core.eval.protocol import Row
from model_core.eval.report import _level_axis, _unique, check_writable, write_atomic

__all__ = ["PAPER_STYLES", "pooled", "paper_figure", "paper_png", "write_paper_plot"]

# Line style of the paper's two curves: dashed, in the colours a reader links to each model.
PAPER_STYLES = {"paper: masked": ("masked", "#d62728"), "paper: baseline": ("baseline", "#1f77b4")}


def pooled(rows: Sequence[Row]) -> dict[tuple[str, str], list[tuple[float, float, float]]]:
    """(method, noise) -> [(level, PSNR, SSIM)] by level, the mean over every data set's images.

    Each data set's row weighs by its image count, so the result is the mean over all images.
    """
    sums: dict[tuple[str, str, float], list[float]] = {}
    for row in rows:
        if row.n_images == 0 or not math.isfinite(row.psnr):
            continue
        acc = sums.setdefault((row.method, row.noise, row.level), [0.0, 0.0, 0.0])
        acc[0] += row.psnr * row.n_images
        acc[1] += row.ssim * row.n_images
        acc[2] += row.n_images
    curves: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for (method, noise, level), (p, s, n) in sums.items():
        curves.setdefault((method, noise), []).append((level, p / n, s / n))
    return {key: sorted(points) for key, points in curves.items()}


def paper_figure(rows: Sequence[Row], paper: bool = True) -> Any:
    """The figure (a matplotlib ``Figure``); noises other than the paper's four are left out.

    Raises:
        ValueError: If no row is of one of the paper's four noises.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kinds = [k for k in PAPER_KINDS if any(r.noise == k for r in rows)]
    if not kinds:
        raise ValueError(f"the paper's figure needs results on {', '.join(PAPER_KINDS)}; none given")
    curves = pooled(rows)
    methods = _unique(r.method for r in rows)
    images = sum({r.dataset: r.n_images for r in rows}.values())
    fig = Figure(figsize=(3.3 * len(kinds), 5.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(kinds), squeeze=False)
    for j, kind in enumerate(kinds):
        for i, quantity in enumerate(("PSNR (dB)", "SSIM")):
            ax = axes[i][j]
            for k, method in enumerate(methods):
                points = curves.get((method, kind), [])
                if points:
                    ax.plot([p[0] for p in points], [p[1 + i] for p in points], marker="o", ms=3.5,
                            color=f"C{k % 10}", label=method)
            if paper and i == 0:
                _paper_lines(ax, kind)
            _level_axis(ax, sorted({r.level for r in rows if r.noise == kind}))
            ax.set_title(f"{kind}" if i == 0 else f"{kind}: SSIM", fontsize=9)
            ax.set_xlabel(f"{kind} level", fontsize=8)
            ax.set_ylabel(quantity, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    datasets = ", ".join(_unique(r.dataset for r in rows))
    note = "; dashed: the paper's readings (PSNR only)" if paper else ""
    fig.suptitle(f"Unseen noises, mean over {images} images of {datasets}{note}", fontsize=9)
    _legend(fig)
    return fig


def _paper_lines(ax: Any, kind: str) -> None:
    points = paper_curve(kind)
    if not points:
        return
    for label, (attr, colour) in PAPER_STYLES.items():
        ax.plot([p.level for p in points], [getattr(p, attr) for p in points], linestyle="--",
                color=colour, alpha=0.8, lw=1.3, label=label)


def _legend(fig: Any) -> None:
    found: dict[str, object] = {}  # label -> line, over all subplots
    for ax in fig.axes:
        handles, labels = ax.get_legend_handles_labels()
        found.update(zip(labels, handles, strict=True))
    fig.legend(list(found.values()), list(found), loc="outside lower center",
               ncols=min(len(found), 6), fontsize=8)


def paper_png(rows: Sequence[Row], paper: bool = True, dpi: int = 110) -> bytes:
    """:func:`paper_figure` encoded as a PNG image."""
    buffer = io.BytesIO()
    paper_figure(rows, paper).savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def write_paper_plot(rows: Sequence[Row], path: str | Path, overwrite: bool = False,
                     paper: bool = True) -> Path:
    """Write :func:`paper_png` to ``path`` atomically."""
    check_writable([Path(path)], overwrite)
    return write_atomic(path, paper_png(rows, paper), overwrite)
