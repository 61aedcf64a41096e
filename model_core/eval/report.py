"""Results of ``mdn eval`` as JSON, Markdown tables and a PSNR-vs-level figure.

Files are written atomically (a temporary file in the destination folder, then ``os.replace``)
and an existing file is only replaced when asked to. The figure uses Matplotlib's Agg canvas
directly, without pyplot, so it never touches a GUI's Matplotlib backend.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from model_core.eval.protocol import Row
from model_core.fileio import atomic_write_bytes, check_writable_folder

__all__ = [
    "check_writable",
    "markdown_tables",
    "plot_png",
    "rows_to_json",
    "write_atomic",
    "write_json",
    "write_markdown",
    "write_plot",
]


def _unique(values: Iterable[str]) -> list[str]:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


def check_writable(paths: Sequence[Path], overwrite: bool) -> None:
    """Fail early, before hours of work, if an output cannot be written as asked.

    Raises:
        IsADirectoryError: If a path is a folder.
        FileExistsError: If a path exists and ``overwrite`` is False.
        FileNotFoundError: If a path's folder does not exist.
        OSError: If a path's folder takes no new file.
        ValueError: If two outputs are the same file.
    """
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise ValueError("two outputs name the same file: " + ", ".join(str(p) for p in paths))
    for path in map(Path, paths):
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder; results are written to file names")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists (use --overwrite to replace it)")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"{path.parent}: no such folder for {path.name}")
    for folder in dict.fromkeys(Path(p).parent for p in paths):
        check_writable_folder(folder)


def write_atomic(path: str | Path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to a temporary sibling of ``path``, then move it into place.

    Raises:
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use --overwrite to replace it)")
    atomic_write_bytes(path, data)
    return path


# --------------------------------------------------------------------------- JSON


def rows_to_json(rows: Sequence[Row]) -> str:
    """The rows as a JSON list of objects (NaN as null)."""
    return json.dumps([row.to_dict() for row in rows], indent=2) + "\n"


def write_json(rows: Sequence[Row], path: str | Path, overwrite: bool = False) -> Path:
    """Write :func:`rows_to_json` to ``path`` atomically."""
    return write_atomic(path, rows_to_json(rows).encode(), overwrite)


# --------------------------------------------------------------------------- Markdown


def _cell(row: Row | None, best: float) -> str:
    if row is None or not math.isfinite(row.psnr):
        return "n/a"
    value = f"{row.psnr:.2f}"
    if row.psnr == best:
        value = f"**{value}**"
    return f"{value} / {row.ssim:.4f}"


def markdown_tables(rows: Sequence[Row]) -> str:
    """One Markdown table per data set: a row per noise:level, a column per method.

    Cells are ``PSNR / SSIM``; the best PSNR of each row is bold.
    """
    blocks = []
    for dataset in _unique(r.dataset for r in rows):
        mine = [r for r in rows if r.dataset == dataset]
        methods = _unique(r.method for r in mine)
        cells = {(str(r.spec), r.method): r for r in mine}
        n_images = max(r.n_images for r in mine)
        lines = [f"### {dataset} ({n_images} images): PSNR (dB) / SSIM", "",
                 "| noise | " + " | ".join(methods) + " |",
                 "| --- |" + " ---: |" * len(methods)]
        for spec in _unique(str(r.spec) for r in mine):
            found = [cells.get((spec, m)) for m in methods]
            scores = [r.psnr for r in found if r is not None and math.isfinite(r.psnr)]
            best = max(scores) if scores else math.nan
            lines.append(f"| {spec} | " + " | ".join(_cell(r, best) for r in found) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_markdown(rows: Sequence[Row], path: str | Path, overwrite: bool = False) -> Path:
    """Write :func:`markdown_tables` to ``path`` atomically."""
    return write_atomic(path, markdown_tables(rows).encode(), overwrite)


# --------------------------------------------------------------------------- figure


def plot_png(rows: Sequence[Row], dpi: int = 110) -> bytes:
    """:func:`plot_figure` encoded as a PNG image."""
    buffer = io.BytesIO()
    plot_figure(rows).savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def plot_figure(rows: Sequence[Row]) -> Any:
    """PSNR against noise level, as the paper's figure (a matplotlib ``Figure``).

    One subplot per (data set, noise type), data sets as rows; one line per method.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("no results to plot")
    datasets = _unique(r.dataset for r in rows)
    kinds = _unique(r.noise for r in rows)
    methods = _unique(r.method for r in rows)
    fig = Figure(figsize=(3.2 * len(kinds), 2.8 * len(datasets) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(datasets), len(kinds), squeeze=False)
    for i, dataset in enumerate(datasets):
        for j, kind in enumerate(kinds):
            ax = axes[i][j]
            for k, method in enumerate(methods):
                points = sorted((r.level, r.psnr) for r in rows
                                if (r.dataset, r.noise, r.method) == (dataset, kind, method))
                if points:
                    ax.plot(*zip(*points, strict=True), marker="o", ms=3.5, color=f"C{k % 10}",
                            label=method)
            _level_axis(ax, sorted({r.level for r in rows if (r.dataset, r.noise) == (dataset, kind)}))
            ax.set_title(f"{dataset}: {kind}", fontsize=9)
            ax.set_xlabel("level", fontsize=8)
            ax.set_ylabel("PSNR (dB)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    legend: dict[str, object] = {}  # label -> line, over all subplots
    for ax in fig.axes:
        handles, labels = ax.get_legend_handles_labels()
        legend.update(zip(labels, handles, strict=True))
    fig.legend(list(legend.values()), list(legend), loc="outside lower center",
               ncols=min(len(methods), 6), fontsize=8)
    return fig


def _level_axis(ax: Any, levels: list[float]) -> None:
    """Ticks at the measured levels, written as short as they read (0.02, not 0.02000).

    Matplotlib's automatic ticks around one or two levels are long crowded offsets; the
    paper's grids have at most a handful of levels per noise, so each gets its own tick.
    """
    if not levels or len(levels) > 8:
        return
    ax.set_xticks(levels, [f"{v:g}" for v in levels])
    if len(levels) == 1:
        pad = abs(levels[0]) * 0.5 or 1.0
        ax.set_xlim(levels[0] - pad, levels[0] + pad)


def write_plot(rows: Sequence[Row], path: str | Path, overwrite: bool = False) -> Path:
    """Write :func:`plot_png` to ``path`` atomically."""
    check_writable([Path(path)], overwrite)  # before the rendering work
    return write_atomic(path, plot_png(rows), overwrite)
