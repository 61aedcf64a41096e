"""``mdn eval``: the paper's protocol in one command.

Example (the numbers of docs/RESULTS.md; ``--grid paper --plot fig.png --paper`` draws the paper's
figure, its readings dashed beside ours)::

    mdn eval --data ../shared/datasets/val/Kodak24 --data ../shared/datasets/val/McMaster \\
        --method masked --method baseline --method noisy --method bm3d --method nlm \\
        --json results.json --markdown results.md --plot results.png

``--method`` takes ``noisy``, ``bm3d``, ``nlm``, ``masked``, ``baseline``, a weights file
(labelled by its stem), or ``LABEL=FILE`` to choose the label.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from model_core.argparsing import (
    DEVICE_HELP,
    OneLineParser,
    UsageError,
    device_name,
    non_negative_int,
    png_path,
    positive_int,
    printable,
    ratio,
    run_reported,
    silence_stdout,
)
from model_core.eval.figure import write_paper_plot
from model_core.eval.methods import CLASSICAL_METHODS, Method, make_method, method_label
from model_core.eval.paper import paper_grid
from model_core.eval.protocol import EvalProgress, Row, evaluate, list_images
from model_core.eval.report import check_writable, markdown_tables, write_json, write_markdown, write_plot
from model_core.noise import NoiseSpec, default_grid
from model_core.weights import SHIPPED_NAMES

__all__ = ["add_arguments", "main", "run"]

PROG = "mdn eval"
GRIDS = ("full", "paper")


def _spec(text: str) -> NoiseSpec:
    try:
        return NoiseSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``mdn eval``."""
    names = ", ".join((*SHIPPED_NAMES, *CLASSICAL_METHODS))
    parser.add_argument("--data", action="append", required=True, type=Path, metavar="DIR",
                        help="folder of clean images (repeatable); its name names the data set")
    parser.add_argument("--method", action="append", required=True, metavar="NAME_OR_WEIGHTS",
                        help=f"{names}, a weights file (labelled by its stem) or LABEL=FILE "
                             "(repeatable; columns in this order)")
    parser.add_argument("--noise", action="append", type=_spec, metavar="TYPE:LEVEL",
                        help="noise to test (repeatable; default: the paper's 24-spec grid)")
    parser.add_argument("--grid", choices=GRIDS, default=None,
                        help="a named grid instead of --noise: 'full' is the paper's 24-spec table "
                             "(the default), 'paper' exactly the 19 points of the paper's "
                             "PSNR-vs-level figure (correlated 40-60, speckle 0.018-0.040, "
                             "Poisson 2-3.5, mixture 1-5)")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="use the first N files of each folder, sorted by name (default: all)")
    parser.add_argument("--attn-mask", type=ratio, metavar="R",
                        help="attention mask ratio of every network (default: each model's "
                             "training value from its card, else 0.75)")
    parser.add_argument("--input-mask", type=ratio, default=0.0, metavar="R",
                        help="share of input pixels dropped before every network, as in masked "
                             "training (default 0, the paper's test setting)")
    parser.add_argument("--passes", type=positive_int, default=1, metavar="N",
                        help="stochastic passes averaged by the networks (default 1)")
    parser.add_argument("--tile", type=non_negative_int, default=0, metavar="T",
                        help="tile side of the networks; 0 = auto: the whole image, cut into tiles "
                             "only where the memory budget needs it (default 0)")
    parser.add_argument("--device", type=device_name, default=None, metavar="D", help=DEVICE_HELP)
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                        help="seed of the noise and the masks (default 0)")
    parser.add_argument("--json", required=True, type=Path, metavar="FILE",
                        help="results: a list of {dataset, noise, level, method, psnr, ssim, n_images}")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="also write the Markdown tables (always printed to stdout)")
    parser.add_argument("--plot", type=png_path, metavar="FILE.png", help="PSNR-vs-level figure")
    parser.add_argument("--paper", action="store_true",
                        help="draw --plot in the paper's layout: correlated, speckle, Poisson, "
                             "mixture; PSNR above, SSIM below; with the paper's masked and baseline "
                             "readings dashed, named 'paper: masked' and 'paper: baseline'")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it shows only when stderr is a terminal)")


def _split_label(value: str) -> tuple[str, str]:
    """``LABEL=FILE`` -> (LABEL, FILE); anything else -> (default label, value)."""
    label, sep, target = value.partition("=")
    if sep and label and target and os.sep not in label and "/" not in label:
        return label, target
    return method_label(value), value


def _build_methods(args: argparse.Namespace, progress: Callable[[Any], None] | None = None
                   ) -> list[Method]:
    pairs = [_split_label(value) for value in args.method]
    labels = [label for label, _ in pairs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise UsageError(f"two methods are labelled {', '.join(repeated)}; name them with LABEL=FILE")
    methods = []
    for label, target in pairs:
        try:
            methods.append(make_method(target, label=label, attn_mask=args.attn_mask,
                                       input_mask=args.input_mask, passes=args.passes,
                                       device=args.device, tile=args.tile, seed=args.seed,
                                       progress=progress))
        except FileNotFoundError as exc:
            names = ", ".join((*SHIPPED_NAMES, *CLASSICAL_METHODS))
            raise FileNotFoundError(f"{exc} (a method is one of {names}, or a weights file)") from None
    return methods


def _check_repeats(args: argparse.Namespace, specs: list[NoiseSpec]) -> None:
    """Reject a data set name or a noise given twice (the results would mix them up)."""
    for option, names in (("--data", [folder.name for folder in args.data]),
                          ("--noise", [str(spec) for spec in specs])):
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise UsageError(f"{option} names {', '.join(repeated)} more than once")


def _outputs(args: argparse.Namespace) -> list[Path]:
    return [p for p in (args.json, args.markdown, args.plot) if p is not None]


# Seconds between redraws of the bar (tqdm's default; tests draw every update).
REDRAW_SECONDS = 0.1


class _RunBar(tqdm):
    """tqdm's bar whose count shows the finished runs while the bar moves inside the next one."""

    FORMAT = "{l_bar}{bar}| {runs}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

    @property
    def format_dict(self) -> dict[str, Any]:
        values = super().format_dict
        values["runs"] = int(values["n"])
        return values


def _evaluate(args: argparse.Namespace, specs: list[NoiseSpec]) -> list[Row]:
    """Build the methods and run them under one bar of runs (image x noise x method), with an ETA.

    The bar moves inside a network's run too, by the share of its tiles' pixels done, so that
    long runs (large images, many passes) show progress and a steady ETA.
    """
    # disable=None: tqdm shows the bar only when stderr is a terminal.
    with _RunBar(unit="run", disable=True if args.no_progress else None, file=sys.stderr,
                 dynamic_ncols=True, mininterval=REDRAW_SECONDS, bar_format=_RunBar.FORMAT) as bar:
        runs_done = 0

        def progress(p: EvalProgress) -> None:
            nonlocal runs_done
            runs_done = p.done
            if bar.total != p.total:
                bar.total = p.total
            bar.set_postfix_str(f"{p.dataset}/{p.image} {p.spec} {p.method}", refresh=False)
            bar.update(p.done - bar.n)

        def tiles(p: Any) -> None:  # an engine Progress inside the run after ``runs_done``
            if p.total and p.done < p.total:
                bar.update(round(runs_done + p.fraction, 3) - bar.n)

        def skipped(path: Path, reason: str) -> None:
            tqdm.write(printable(f"{PROG}: warning: skipping {path.name}: {reason}"), file=sys.stderr)

        methods = _build_methods(args, tiles)
        # Known before the first run ends, so that the bar can move inside it.
        bar.total = sum(len(list_images(folder, args.limit)) for folder in args.data) \
            * len(specs) * len(methods)
        return evaluate(args.data, methods, specs, args.limit, args.seed, progress, on_skip=skipped)


def _specs(args: argparse.Namespace) -> list[NoiseSpec]:
    """The noises to run: --noise, else the named --grid (default: the paper's full table)."""
    if args.noise and args.grid:
        raise UsageError("give --noise or --grid, not both")
    if args.paper and args.plot is None:
        raise UsageError("--paper draws the --plot figure; give --plot FILE.png too")
    if args.noise:
        return list(args.noise)
    return paper_grid() if args.grid == "paper" else default_grid()


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the results; returns the exit status."""
    specs = _specs(args)
    _check_repeats(args, specs)
    check_writable(_outputs(args), args.overwrite)
    # Folder and file names that are not UTF-8 would fail every text output, after all the work.
    rows = [replace(row, dataset=printable(row.dataset), method=printable(row.method))
            for row in _evaluate(args, specs)]
    unread = sorted({row.dataset for row in rows if row.n_images == 0})
    if unread:
        raise ValueError(f"no image of {', '.join(unread)} could be read (see the warnings); "
                         "nothing written")
    # Printed first, so that a failing write (disk full) does not lose the results; a closed
    # pipe (mdn eval ... | head) must not lose the files either.
    try:
        sys.stdout.write(markdown_tables(rows))
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    write_json(rows, args.json, args.overwrite)
    if args.markdown is not None:
        write_markdown(rows, args.markdown, args.overwrite)
    if args.plot is not None and args.paper:
        write_paper_plot(rows, args.plot, args.overwrite)
    elif args.plot is not None:
        write_plot(rows, args.plot, args.overwrite)
    for path in _outputs(args):
        print(f"{PROG}: wrote {printable(str(path))}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone parser of ``python -m model_core.eval``."""
    parser = OneLineParser(
        prog=PROG, description="Evaluate denoisers on data sets x noises, as the paper does.")
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mdn eval`` with ``argv`` (default: the process arguments); returns the exit status."""
    return run_reported(PROG, lambda: run(build_parser().parse_args(argv)))
