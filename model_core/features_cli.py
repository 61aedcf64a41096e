"""``mdn features``: the deep-feature histograms of the paper's interpretability figure.

Example::

    mdn features ../shared/datasets/val/Kodak24/kodim05.png --weights baseline --weights masked \\
        --plot features.png --json features.json

One panel per model, in the order of ``--weights``: the histograms of its deep feature values
under each noise, overlaid, titled with its distance D (see :mod:`model_core.features`).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_core.argparsing import (
    DEVICE_HELP,
    OneLineParser,
    UsageError,
    device_name,
    non_negative_int,
    png_path,
    positive_int,
    printable,
    run_reported,
)
from model_core.features import (
    DEFAULT_NOISES,
    REFERENCE_NOISE,
    FeatureProgress,
    FeatureReport,
    centre_crop,
    feature_reports,
)
from model_core.noise import NoiseSpec
from model_core.weights import SHIPPED_NAMES

__all__ = ["build_parser", "features_png", "main"]

PROG = "mdn features"


def _spec(text: str) -> str:
    try:
        return str(NoiseSpec.parse(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``mdn features``."""
    parser = OneLineParser(prog=PROG, description=(
        "Histograms of a network's deep features for one clean image under several noises, and "
        "the distance D of each model: the mean over the unseen noises of the 1-Wasserstein "
        f"distance between their feature distribution and the {REFERENCE_NOISE} one, divided by "
        f"the {REFERENCE_NOISE} std (0: the features ignore the noise)."))
    parser.add_argument("image", type=Path, metavar="IMAGE", help="clean image")
    parser.add_argument("--weights", action="append", required=True, metavar="NAME_OR_FILE",
                        help=f"{', '.join(SHIPPED_NAMES)}, a weights file (labelled by its stem) or "
                             "LABEL=FILE (repeatable; panels in this order)")
    parser.add_argument("--noise", action="append", type=_spec, metavar="TYPE:LEVEL",
                        help=f"noise (repeatable; {REFERENCE_NOISE} is always measured, as the "
                             f"reference; default: {', '.join(DEFAULT_NOISES)})")
    parser.add_argument("--layer", type=int, default=-1, metavar="N",
                        help="residual group whose output is plotted, 0-based; negative counts from "
                             "the end (default -1: the last group, before conv_after_body)")
    parser.add_argument("--crop", type=positive_int, default=None, metavar="N",
                        help="use the central NxN pixels only (default: the whole image)")
    parser.add_argument("--attn-mask", type=float, default=None, metavar="R",
                        help="attention mask ratio of every network (default: each model's training value)")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                        help="seed of the noise and the masks (default 0)")
    parser.add_argument("--device", type=device_name, default=None, metavar="D", help=DEVICE_HELP)
    parser.add_argument("--plot", type=png_path, metavar="FILE.png", help="the histograms")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="bin edges, histograms and distances per model")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return parser


def _label(value: str) -> tuple[str, str]:
    label, sep, target = value.partition("=")
    if sep and label and target and "/" not in label:
        return label, target
    return (value if value in SHIPPED_NAMES else Path(value).stem), value


def _load(values: Sequence[str], device: str | None, attn_mask: float | None) -> list[tuple[str, Any, float]]:
    from model_core.engine import Engine
    from model_core.weights import resolve_weights, training_attn_mask_ratio

    pairs = [_label(v) for v in values]
    labels = [label for label, _ in pairs]
    if len(set(labels)) != len(labels):
        raise UsageError("two --weights have the same label; name them with LABEL=FILE")
    models = []
    for label, target in pairs:
        engine = Engine.from_file(resolve_weights(target), device=device)
        ratio = training_attn_mask_ratio(engine.card) if attn_mask is None else attn_mask
        models.append((label, engine.model, ratio))
    return models


def _noises(given: list[str] | None) -> list[str]:
    noises = list(dict.fromkeys(given or DEFAULT_NOISES))
    return noises if REFERENCE_NOISE in noises else [REFERENCE_NOISE, *noises]


def features_png(reports: Sequence[FeatureReport], title: str = "", dpi: int = 110) -> bytes:
    """One panel per model, its noises' histograms overlaid (a PNG image)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6 * len(reports), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(reports), squeeze=False)[0]
    for ax, report in zip(axes, reports, strict=True):
        centres = [(a + b) / 2 for a, b in zip(report.edges[:-1], report.edges[1:], strict=True)]
        for k, (noise, density) in enumerate(report.histograms.items()):
            reference = noise == report.reference
            ax.plot(centres, density, color="black" if reference else f"C{k % 10}",
                    lw=2.0 if reference else 1.3, label=noise + (" (training noise)" if reference else ""))
        ax.set_title(f"{report.label}: D = {report.distance:.3f}", fontsize=10)
        ax.set_xlabel(f"feature value (output of group {report.group})", fontsize=8)
        ax.set_ylabel("density", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    """Measure and write the outputs; returns the exit status."""
    from model_core.eval.report import check_writable, write_atomic
    from model_core.imageio import read_image

    outputs = [p for p in (args.plot, args.json) if p is not None]
    if not outputs:
        raise UsageError("give --plot FILE.png and/or --json FILE")
    check_writable(outputs, args.overwrite)
    clean = read_image(args.image).rgb
    if args.crop:
        clean = centre_crop(clean, args.crop)
    models = _load(args.weights, args.device, args.attn_mask)

    def progress(p: FeatureProgress) -> None:
        print(f"{PROG}: {p.done}/{p.total} {p.message}", file=sys.stderr)

    reports = feature_reports(models, clean, _noises(args.noise), group=args.layer, seed=args.seed,
                              progress=progress)
    h, w = clean.shape[:2]
    for report in reports:
        parts = ", ".join(f"{n} {d:.3f}" for n, d in report.distances.items())
        print(f"{printable(report.label)}: D = {report.distance:.4f} ({parts})")
    if args.json is not None:
        data = {"image": str(args.image), "size": [w, h], "seed": args.seed,
                "models": [r.to_dict() for r in reports]}
        write_atomic(args.json, (json.dumps(data, indent=1) + "\n").encode(), args.overwrite)
    if args.plot is not None:
        title = f"{printable(args.image.name)} ({w}x{h}), deep features under each noise"
        write_atomic(args.plot, features_png(reports, title), args.overwrite)
    for path in outputs:
        print(f"{PROG}: wrote {printable(str(path))}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mdn features`` with ``argv`` (default: the process arguments); returns the exit status."""
    return run_reported(PROG, lambda: run(build_parser().parse_args(argv)))
