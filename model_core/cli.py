"""The ``mdn`` command line: ``mdn denoise``, ``mdn noise``, ``mdn metrics``, ``mdn info``.

Each subcommand is a :class:`Command`, listed in :func:`builtin_commands`. A command either
parses its arguments here (``configure`` adds them, ``run`` does the work) or is *delegated*:
``delegate("train", "model_core.train.cli", "train a model")`` forwards everything after the
command name to ``model_core.train.cli.main(argv) -> int``, imported only when that command
runs, so the module keeps its own parser and ``mdn --help`` stays fast. ``mdn train``,
``mdn eval`` and ``mdn features`` are added that way, each one line in :func:`builtin_commands`.
:func:`register` adds a command at run time (plugins, tests).

Errors the user can fix (bad files, bad values) end the program with one line on stderr,
``mdn <command>: error: ...``, and a non-zero exit status (2 for usage errors, as argparse's);
set ``MDN_TRACEBACK=1`` to see the traceback instead. Warnings are one line each, shown once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from model_core.argparsing import (
    DEVICE_HELP,
    OneLineParser,
    UsageError,
    describe_error,
    device_name,
    non_negative_int,
    positive_int,
    printable,
    ratio,
    run_reported,
)
from model_core.fileio import check_writable_folder
from model_core.imageio import read_image, to_grey, write_image
from model_core.metrics import psnr, ssim
from model_core.noise import NOISE_TYPES, NoiseSpec, apply_noise
from model_core.tiling import default_overlap
from model_core.weights import SHIPPED_NAMES, resolve_weights, training_attn_mask_ratio, training_summary

__all__ = ["CliError", "Command", "build_parser", "builtin_commands", "delegate", "main", "register"]

PROG = "mdn"


class CliError(Exception):
    """A problem the user can fix; reported as one line, exit status 1."""


@dataclass(frozen=True)
class Command:
    """One ``mdn`` subcommand.

    Attributes:
        name: The subcommand's name.
        help: One-line summary shown by ``mdn --help``.
        configure: Adds the command's arguments to its parser (not for delegated commands).
        run: Does the work from the parsed arguments; returns the exit status.
        module: For a delegated command, the module whose ``main(argv) -> int`` runs it.
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None] | None = None
    run: Callable[[argparse.Namespace], int] | None = None
    module: str | None = None

    def __post_init__(self) -> None:
        if (self.module is None) == (self.configure is None or self.run is None):
            raise ValueError(f"command {self.name!r} needs either configure and run, or a module")


def delegate(name: str, module: str, help: str) -> Command:
    """A command implemented by ``module.main(argv) -> int``, imported only when it runs."""
    return Command(name, help, module=module)


_EXTRA_COMMANDS: list[Command] = []


def register(command: Command) -> None:
    """Add a subcommand to those :func:`main` offers (call before ``main``)."""
    if command.name in {c.name for c in _all_commands()}:
        raise ValueError(f"an mdn command named {command.name!r} exists already")
    _EXTRA_COMMANDS.append(command)


# --------------------------------------------------------------------------- mdn denoise


def _configure_denoise(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="noisy images")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="DIR",
                        help="folder for <stem>_denoised.png (created if missing)")
    parser.add_argument("--weights", default="masked", metavar="FILE_OR_NAME",
                        help=f"weights file, or a shipped model: {', '.join(SHIPPED_NAMES)} "
                             "(default: masked)")
    parser.add_argument("--attn-mask", type=ratio, default=None, metavar="R",
                        help="attention mask ratio; 0 = off (default: the model's training value, "
                             "0.75 for the paper's masked models, 0 for the baseline)")
    parser.add_argument("--input-mask", type=ratio, default=0.0, metavar="R",
                        help="drop this share of input pixels first (a demo; default 0)")
    parser.add_argument("--passes", type=positive_int, default=1, metavar="N",
                        help="average N passes with different masks (default 1)")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                        help="seed of the masks (default 0)")
    parser.add_argument("--tile", type=non_negative_int, default=0, metavar="T",
                        help="tile side in pixels; 0 = auto: the whole image at once, cut into "
                             "tiles only where the device's memory budget needs it (default 0)")
    parser.add_argument("--overlap", type=non_negative_int, default=None, metavar="P",
                        help="overlap of neighbouring tiles (default: 32, or a quarter of a "
                             "tile under 128)")
    parser.add_argument("--precision", default="auto", choices=("fp32", "bf16", "auto"), metavar="P",
                        help="fp32, bf16 or auto: bf16 where the hardware runs it natively (CUDA, "
                             "CPUs with AVX512-BF16 or AMX; within 0.01 dB of fp32), else fp32 "
                             "(default auto)")
    parser.add_argument("--device", type=device_name, default=None, metavar="D",
                        help=DEVICE_HELP)
    parser.add_argument("--save-std", action="store_true",
                        help="also write <stem>_std.png, the 16-bit per-pixel std over passes "
                             "(in image units, not rescaled); needs --passes 2 or more")
    parser.add_argument("--bit-depth", type=int, choices=(8, 16), default=None,
                        help="bits per sample of the output (default: 16 for 16-bit inputs, else 8)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (they show only when stderr is a terminal)")


def _run_denoise(args: argparse.Namespace) -> int:
    # The engine pulls in torch; imported here so the light commands start fast.
    from model_core.engine import Engine, RunSettings

    overlap = _check_denoise_options(args)
    jobs = _output_names(args.images, args.output)
    engine = Engine.from_file(resolve_weights(args.weights), device=args.device)
    ratio = args.attn_mask if args.attn_mask is not None else training_attn_mask_ratio(engine.card)
    settings = RunSettings(
        attn_mask_ratio=ratio, input_mask_ratio=args.input_mask, passes=args.passes,
        seed=args.seed, tile=args.tile, overlap=overlap, precision=args.precision)
    check_writable_folder(args.output, create=True)
    failed = 0
    # disable=None: tqdm shows a bar only when stderr is a terminal.
    quiet = True if args.no_progress else None
    with tqdm(jobs, desc="images", unit="image", disable=quiet, file=sys.stderr, dynamic_ncols=True) as bar:
        for src, dst in bar:
            try:
                with _TileBar(quiet) as tiles:
                    _denoise_one(engine, src, dst, settings, args, tiles)
            except (ValueError, OSError) as exc:
                failed += 1
                message = f"{PROG} denoise: skipping {printable(str(src))}: {describe_error(exc)}"
                tqdm.write(message, file=sys.stderr)
    return 1 if failed else 0


class _TileBar:
    """The second bar of ``mdn denoise``: the tiles (x passes) of the image under way, with an ETA.

    A context manager; :meth:`update` takes the engine's :class:`~model_core.engine.Progress`.
    """

    def __init__(self, disable: bool | None) -> None:
        self._bar = tqdm(total=0, unit="tile", desc="tiles", leave=False, disable=disable,
                         file=sys.stderr, dynamic_ncols=True)

    def __enter__(self) -> _TileBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()

    def update(self, progress: Any) -> None:
        if progress.total == 0:  # an out-of-memory retry starts over with smaller tiles
            self._bar.reset(total=0)
        elif self._bar.total != progress.total:
            self._bar.reset(total=progress.total)
        self._bar.set_postfix_str(progress.message, refresh=False)
        self._bar.update(progress.done - self._bar.n)


def _check_denoise_options(args: argparse.Namespace) -> int:
    """Reject option combinations that cannot work; return the tile overlap to use."""
    if args.save_std and args.passes < 2:
        raise UsageError("--save-std needs --passes 2 or more")
    overlap = default_overlap(args.tile) if args.overlap is None else args.overlap
    if args.tile and overlap >= args.tile:
        raise UsageError(f"--overlap ({overlap}) must be smaller than --tile ({args.tile})")
    return overlap


def _output_names(images: Sequence[Path], folder: Path) -> list[tuple[Path, Path]]:
    """(input, output) pairs; refuses two inputs that would write the same file."""
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{folder} is not a folder")
    jobs, seen = [], {}
    for src in images:
        dst = folder / f"{src.stem}_denoised.png"
        if dst in seen:
            raise CliError(f"{seen[dst]} and {src} would both be written to {dst}")
        seen[dst] = src
        jobs.append((src, dst))
    return jobs


def _denoise_one(engine: Any, src: Path, dst: Path, settings: Any, args: argparse.Namespace,
                 tiles: _TileBar) -> None:
    std_path = dst.with_name(f"{src.stem}_std.png")
    targets = [dst, std_path] if args.save_std else [dst]
    _refuse_existing(targets, args.overwrite)
    loaded = read_image(src)
    result = engine.denoise(loaded.rgb, settings, progress=tiles.update)
    _check_model_output(engine, src, loaded.rgb, result.image)
    depth = args.bit_depth or (16 if loaded.bit_depth == 16 else 8)
    # The network is RGB: a grey image goes in as three equal channels, and the mean of the
    # three channels it gives back comes out (for the std map, the mean of their std).
    image, std = result.image, result.std
    if loaded.grey:
        image, std = to_grey(image), None if std is None else to_grey(std)
    write_image(dst, image, alpha=loaded.alpha, bit_depth=depth, overwrite=args.overwrite)
    if args.save_std:
        write_image(std_path, std, bit_depth=16, overwrite=args.overwrite)
    tqdm.write(printable(str(dst)), file=sys.stdout)  # clears the bars on a terminal first


def _check_model_output(engine: Any, src: Path, image: np.ndarray, output: np.ndarray) -> None:
    """Stop the batch (CliError, not a per-image skip) when a finite image gives a non-finite result.

    The weights are then at fault, and every other image would fail the same way.
    """
    if not np.isfinite(output).all() and np.isfinite(image).all():
        raise CliError(f"the model {printable(str(engine.source))} gave NaN or infinite values for "
                       f"{printable(str(src))}, whose pixels are all finite: the weights are at "
                       "fault; stopping")


def _refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    for path in paths:
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists (use --overwrite to replace it)")


# --------------------------------------------------------------------------- mdn noise


def _configure_noise(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, metavar="IMAGE", help="clean image")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE",
                        help="noisy image to write (8-bit when quantised, else 16-bit PNG/TIFF)")
    parser.add_argument("--type", required=True, type=_noise_kind, metavar="T",
                        help=f"noise type: {', '.join(sorted(NOISE_TYPES))}")
    parser.add_argument("--level", type=float, default=None, metavar="L",
                        help="noise level; its meaning and range depend on the type (see below)")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                        help="seed of the noise (default 0)")
    parser.add_argument("--no-quantize", action="store_true",
                        help="keep the noisy values instead of rounding them to 8 bits")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "levels:\n" + "\n".join(
        f"  {t.name}: {t.level_meaning}, {t.valid_range[0]:g} to {t.valid_range[1]:g} "
        f"(default {t.default_level:g})" for t in NOISE_TYPES.values())


def _noise_kind(text: str) -> str:
    """argparse type: a noise type in any spelling ``mdn eval --noise`` takes (``salt_pepper``)."""
    if ":" in text:  # TYPE:LEVEL is mdn eval's form; here the level has an option of its own
        raise argparse.ArgumentTypeError(f"{text!r}: give the type alone and the level with --level")
    try:
        return NoiseSpec.parse(text).kind
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_noise(args: argparse.Namespace) -> int:
    try:
        spec = NoiseSpec.parse(args.type if args.level is None else f"{args.type}:{args.level}")
    except ValueError as exc:
        raise UsageError(f"argument --level: {exc}") from None
    if args.output.is_dir():
        raise CliError(f"{args.output} is a folder; -o takes an image file name")
    if args.no_quantize and args.output.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise UsageError("--no-quantize keeps 16 bits, which only PNG and TIFF hold; "
                         "use a .png or .tif output")
    _refuse_existing([args.output], args.overwrite)
    loaded = read_image(args.image)
    noisy = apply_noise(loaded.rgb, spec, seed=args.seed, quantize=not args.no_quantize)
    if loaded.grey:  # apply_noise kept it grey: one channel out, as in
        noisy = noisy[..., 0]
    depth = 16 if args.no_quantize else 8
    write_image(args.output, noisy, alpha=loaded.alpha, bit_depth=depth, overwrite=args.overwrite)
    print(printable(str(args.output)))
    return 0


# --------------------------------------------------------------------------- mdn metrics


def _configure_metrics(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clean", type=Path, metavar="CLEAN", help="reference image")
    parser.add_argument("test", type=Path, metavar="TEST", help="image to measure")
    parser.add_argument("--json", action="store_true",
                        help="print JSON (psnr is null for identical images)")
    parser.add_argument("--border", type=non_negative_int, default=0, metavar="N",
                        help="crop N pixels from every side first (default 0)")
    parser.add_argument("--y", action="store_true", help="measure the BT.601 luma (Y) only")


def _run_metrics(args: argparse.Namespace) -> int:
    if args.border < 0:
        raise CliError(f"--border must be >= 0, got {args.border}")
    clean, test = read_image(args.clean), read_image(args.test)
    grey = clean.grey and test.grey  # scored as grey: one plane (and --y leaves it as it is)
    clean, test = (to_grey(clean.rgb), to_grey(test.rgb)) if grey else (clean.rgb, test.rgb)
    if clean.shape != test.shape:
        raise CliError(f"the images differ in size: {clean.shape[1]}x{clean.shape[0]} "
                       f"vs {test.shape[1]}x{test.shape[0]} (WxH)")
    value = psnr(clean, test, border=args.border, y_only=args.y)
    score = ssim(clean, test, border=args.border, y_only=args.y)
    if args.json:
        print(json.dumps({"clean": str(args.clean), "test": str(args.test),
                          "psnr": value if value != float("inf") else None, "ssim": score,
                          "border": args.border, "y_only": args.y}))
    else:
        print(f"PSNR {value:.4f} dB\nSSIM {score:.6f}")
    return 0


# --------------------------------------------------------------------------- mdn info


def _configure_info(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", metavar="WEIGHTS",
                        help=f"weights file, or a shipped model: {', '.join(SHIPPED_NAMES)}")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _run_info(args: argparse.Namespace) -> int:
    from model_core.network.checkpoint import load_weights  # torch, see _run_denoise

    loaded = load_weights(resolve_weights(args.weights))
    card = {k: v for k, v in loaded.card.items() if k != "config"}
    info = {"file": str(loaded.source), "format": loaded.kind,
            "parameters": sum(p.numel() for p in loaded.model.parameters()),
            "config": loaded.config.to_dict(), "card": card}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"file: {printable(info['file'])}\nformat: {info['format']}\nparameters: {info['parameters']:,}")
    summary = training_summary(loaded.card)
    if summary:
        print(f"training: {summary}")
    for section in ("config", "card"):
        print(f"{section}:" + ("" if info[section] else " (none)"))
        for key, value in info[section].items():
            print(f"  {key}: {json.dumps(value)}")
    return 0


# --------------------------------------------------------------------------- the program


def builtin_commands() -> list[Command]:
    """The commands ``mdn`` always has, in the order ``mdn --help`` lists them."""
    return [
        Command("denoise", "denoise images with a trained model", _configure_denoise, _run_denoise),
        Command("noise", "add synthetic noise to an image", _configure_noise, _run_noise),
        Command("metrics", "PSNR and SSIM of an image against a clean reference",
                _configure_metrics, _run_metrics),
        Command("info", "show the configuration and model card of a weights file",
                _configure_info, _run_info),
        delegate("train", "model_core.train.cli", "train a model (the paper's masked recipe or a baseline)"),
        delegate("eval", "model_core.eval.cli",
                 "evaluate denoisers over data sets and noises, as the paper does"),
        delegate("features", "model_core.features_cli",
                 "histograms of a network's deep features under several noises, and their distance"),
    ]


def _all_commands() -> list[Command]:
    return builtin_commands() + _EXTRA_COMMANDS


def build_parser(commands: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    """The ``mdn`` parser with a subparser per command."""
    parser = OneLineParser(prog=PROG, description="mdn: masked-training image denoising.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands if commands is not None else _all_commands():
        if command.module is not None:
            # Delegated: listed here for --help, parsed by its own module in main().
            subparsers.add_parser(command.name, help=command.help, add_help=False)
            continue
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        assert command.configure is not None and command.run is not None
        command.configure(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mdn`` with ``argv`` (default: the process arguments); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _all_commands()
    delegated = {c.name: c.module for c in commands if c.module is not None}
    prog = f"{PROG} {argv[0]}" if argv and argv[0] in {c.name for c in commands} else PROG
    if argv and argv[0] in delegated:  # the command shows its own warnings
        def body() -> int:
            return int(_import_command(argv[0], str(delegated[argv[0]])).main(argv[1:]))
        return run_reported(prog, body, (CliError, ValueError, OSError), own_warnings=False)

    def handle() -> int:
        args = build_parser(commands).parse_args(argv)
        return int(args.handler(args))
    return run_reported(prog, handle, (CliError, ValueError, OSError))


def _import_command(name: str, module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise CliError(f"'{PROG} {name}' is not available: {exc}") from exc


if __name__ == "__main__":
    sys.exit(main())
