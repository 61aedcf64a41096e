"""Validation curves of training runs as a Markdown table and a figure, for docs/RESULTS.md.

``python -m model_core.train.curves --run masked=runs/c1-masked --run baseline=runs/c1-baseline
--markdown curves.md --plot curves.png``

Each run is a ``mdn train`` folder, a copy of its ``log.csv``, or a weights file whose model card
carries a ``validation`` table (``publish`` puts it there), so the curves of a stage stay readable
after its run folder is gone. Stages of a campaign chain with ``+``: ``--run
masked=docs/results/campaign/c1-masked.csv+runs/c2-masked`` counts each stage's iterations on from
the last validated iteration of the stage before (a stage validates at its end), and the figure
marks where each stage starts.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_core.argparsing import OneLineParser, run_reported
from model_core.eval.report import check_writable, write_atomic
from model_core.train.publish import validation_table

PROG = "python -m model_core.train.curves"
# Columns in the order they are shown; a run logs a subset of them (earlier mdn: two).
NOISES = (("gaussian15", "Gaussian 15"), ("poisson2.5", "Poisson 2.5"), ("speckle0.024", "speckle 0.024"),
          ("mixture2", "mixture 2"), ("correlated50", "correlated 50"), ("unseen", "unseen mean"))


def read_curve(source: Path) -> list[dict[str, Any]]:
    """The validation rows of a run folder's ``log.csv`` or of a weights file's model card.

    Raises:
        FileNotFoundError: ``source`` is neither.
        ValueError: It holds no validation row.
    """
    if source.is_dir():
        rows = validation_table(source / "log.csv")
    elif source.is_file() and source.suffix.lower() == ".csv":
        rows = validation_table(source)
    elif source.is_file():
        from model_core.network.checkpoint import load_weights

        rows = load_weights(source).card.get("validation", [])
    else:
        raise FileNotFoundError(f"{source}: no such run folder or weights file")
    if not rows:
        raise ValueError(f"{source}: no validation rows (was the run validated? --val-every)")
    return rows


def read_stages(spec: str) -> tuple[list[dict[str, Any]], list[int]]:
    """The rows of ``PATH[+PATH...]``, later stages' iterations counted on from the earlier ones.

    Returns:
        (rows, the iteration at which each stage after the first starts).
    """
    rows: list[dict[str, Any]] = []
    starts: list[int] = []
    for i, part in enumerate(spec.split("+")):
        offset = rows[-1]["iteration"] if rows else 0
        if i:
            starts.append(offset)
        rows += [{**r, "iteration": r["iteration"] + offset} for r in read_curve(Path(part))]
    return rows, starts


def markdown(curves: dict[str, list[dict[str, Any]]]) -> str:
    """One table per run: iteration, then the PSNR of every noise it was validated on."""
    parts = []
    for label, rows in curves.items():
        shown = [(key, name) for key, name in NOISES if any(f"{key}_psnr" in r for r in rows)]
        lines = [f"**{label}**", "", "| iteration | " + " | ".join(name for _, name in shown) + " |",
                 "| ---: | " + " | ".join("---:" for _ in shown) + " |"]
        for r in rows:
            cells = [f"{r[f'{key}_psnr']:.2f}" if f"{key}_psnr" in r else "" for key, _ in shown]
            lines.append(f"| {r['iteration']} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def plot_png(curves: dict[str, list[dict[str, Any]]], title: str, starts: Sequence[int] = ()) -> bytes:
    """PSNR against iteration, one panel per noise, one line per run, a dotted line where each
    chained stage starts (PNG bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = [(k, n) for k, n in NOISES if any(f"{k}_psnr" in r for rows in curves.values() for r in rows)]
    fig = Figure(figsize=(3.2 * len(keys), 3.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, (key, name) in zip(axes, keys, strict=True):
        for label, rows in curves.items():
            points = [(r["iteration"], r[f"{key}_psnr"]) for r in rows if f"{key}_psnr" in r]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label)
        for start in starts:
            ax.axvline(start, color="grey", linestyle=":", linewidth=1)
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR (dB)")
    axes[0].legend(fontsize="small")
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def build_parser() -> OneLineParser:
    """The parser of the curves command."""
    parser = OneLineParser(prog=PROG, description="Validation curves of training runs.")
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=PATH[+PATH...]",
                        help="a run folder, a copy of its log.csv or a published weights file; "
                             "stages of one model chained with + (repeatable)")
    parser.add_argument("--markdown", type=Path, help="write the tables here (always printed)")
    parser.add_argument("--plot", type=Path, help="write the figure here (.png)")
    parser.add_argument("--title", default="Validation PSNR during training")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    return parser


def run(args: argparse.Namespace) -> int:
    """Read every run, print the tables and write the asked-for files; returns the exit code."""
    curves = {}
    starts: set[int] = set()
    for item in args.run:
        label, sep, path = item.partition("=")
        if not sep or not label or not path or "" in path.split("+"):
            raise ValueError(f"--run {item!r}: expected LABEL=PATH[+PATH...]")
        curves[label], found = read_stages(path)
        starts.update(found)
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise ValueError(f"--plot {args.plot}: must be a .png file")
    outputs = [p for p in (args.markdown, args.plot) if p is not None]
    check_writable(outputs, args.overwrite)
    text = markdown(curves)
    print(text, end="")
    if args.markdown is not None:
        write_atomic(args.markdown, text.encode(), overwrite=args.overwrite)
    if args.plot is not None:
        write_atomic(args.plot, plot_png(curves, args.title, sorted(starts)), overwrite=args.overwrite)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (errors are one line on stderr)."""
    return run_reported(PROG, lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
