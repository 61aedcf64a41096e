"""``mdn train``: command-line front end of the training loop."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from model_core.argparsing import OneLineParser, run_reported
from model_core.train.config import (
    DEFAULT_TRAIN_DIR,
    DEFAULT_VAL_DIR,
    MODEL_SIZES,
    RECIPES,
    TrainConfig,
)
from model_core.train.loop import CKPT_NAME, checkpoint_run
from model_core.train.run import RunPaths, train

PROG = "mdn train"
LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``mdn train``."""
    parser.add_argument("--preset", choices=("masked", "baseline"),
                        help="the paper's recipe with masks (masked) or without (baseline); "
                             "required unless --paired")
    parser.add_argument("--recipe", choices=tuple(RECIPES),
                        help="paper: the official recipe (default); cpu: mdn's departure for CPU "
                             "budgets (a quarter of the patches left dense, lr 2e-4 with warm-up and "
                             "a cosine tail, EMA 0.995; fine-tune from --init baseline), see "
                             "docs/RESULTS.md")
    parser.add_argument("--size", choices=tuple(MODEL_SIZES),
                        help="model size: the paper's configuration, or a smaller one for CPUs "
                             "(default: paper, or the resumed run's)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log, model)")
    parser.add_argument("--data", type=Path,
                        help="folder of clean images (default: CBSD432 of ../shared/datasets, or the "
                             "resumed run's)")
    parser.add_argument("--val", help="validation folder, 'none' to skip (default: Kodak24 of "
                                      "../shared/datasets, or the resumed run's)")
    parser.add_argument("--iterations", type=int, help="total iterations (default: the paper's 450k)")
    parser.add_argument("--patch", type=int, help="side of the training crops (default 64)")
    parser.add_argument("--batch", type=int, help="patches per iteration and process (default 8)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default 1e-4)")
    parser.add_argument("--milestones", type=int, nargs="*", help="learning-rate decay iterations")
    parser.add_argument("--warmup", type=int,
                        help="iterations of linear learning-rate warm-up (default 0; use ~100 with --init)")
    parser.add_argument("--cosine-tail", type=float,
                        help="share of the iterations at the end over which the learning rate falls "
                             "to 0 along a cosine (default 0; the cpu recipe's 0.25)")
    parser.add_argument("--dense-share", type=float,
                        help="share of a masked run's patches left without input mask (default 0, "
                             "the paper; the cpu recipe's 0.25)")
    parser.add_argument("--dense-final", type=float,
                        help="dense share at the last iteration: the share moves linearly from "
                             "--dense-share to it over the run (default: constant)")
    parser.add_argument("--mask-ramp", type=float,
                        help="share of the iterations over which each patch's input-mask ratio "
                             "rises from --mask-ramp-start to the paper's 80-90%% (default 0: none)")
    parser.add_argument("--mask-ramp-start", type=float,
                        help="input-mask ratio of every masked patch at iteration 0 of --mask-ramp "
                             "(default 0.5)")
    parser.add_argument("--ema", type=float, dest="ema_decay", help="EMA decay (default 0.999)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), help="default: auto")
    parser.add_argument("--checkpoint-every", type=int, help="iterations between checkpoints")
    parser.add_argument("--val-every", type=int, help="iterations between validations")
    parser.add_argument("--val-limit", type=int, help="validation images used")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default 1)")
    parser.add_argument("--seed", type=int, help="seed of data, noise and masks (default 0)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if present)")
    parser.add_argument("--init", help="warm-start from weights: masked, baseline (shipped), a weights "
                                       "file or another run's last.ckpt; none: from scratch (default)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/last.ckpt exactly; options not given are the run's")
    parser.add_argument("--overwrite", action="store_true",
                        help="start a new run in an OUT that holds one (its checkpoint and log are replaced)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_paired_arguments(parser)


def _add_paired_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the paired path (model_core/train/paired_run.py)."""
    parser.add_argument("--paired", action="store_true",
                        help="train the masked and the baseline model together in one process on "
                             "one device, data resident there (OUT/masked, OUT/baseline; batch 64 "
                             "by default; the GPU path)")
    parser.add_argument("--variant", choices=("eager", "compile", "compile+cudagraphs"), default="eager",
                        help="--paired step: eager, torch.compile, or compiled with CUDA graphs; "
                             "falls back to the next simpler one where unavailable (default eager)")
    parser.add_argument("--sdpa", action="store_true",
                        help="--paired: attention through F.scaled_dot_product_attention (CUDA)")
    parser.add_argument("--baseline-init", help="--paired: the baseline's --init (none: from scratch)")


_FIELDS = ("iterations", "patch", "batch", "lr", "milestones", "warmup", "cosine_tail", "dense_share",
           "dense_final", "mask_ramp", "mask_ramp_start", "ema_decay", "precision", "checkpoint_every",
           "val_every", "val_limit", "workers", "seed")


# Options that change the samples, noise, masks or steps of the iterations still to come: a
# resumed run given other values than it started with does not continue the same run.
_EXACT_FIELDS = ("patch", "batch", "lr", "dense_share", "ema_decay", "precision", "seed")
# Recipe knobs a resumed run must keep, like its preset, size and recipe: changed, the run would
# be another arm of a recipe comparison, not this one continued.
_FIXED_FIELDS = ("dense_final", "mask_ramp", "mask_ramp_start")


def config_from_args(args: argparse.Namespace, saved: TrainConfig | None = None) -> TrainConfig:
    """The preset with the options the user gave; when resuming, the ``saved`` run's config
    with them (an option left out keeps the run's value, not the preset's default)."""
    changes = {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}
    if saved is None:
        return TrainConfig.preset_config(args.preset, args.recipe or "paper",
                                         model_size=args.size or "paper", **changes)
    given = (args.preset, args.size or saved.model_size, args.recipe or saved.recipe)
    if given != (saved.preset, saved.model_size, saved.recipe):
        raise ValueError(f"{args.out / CKPT_NAME}: the run is {saved.preset}/{saved.model_size}, "
                         f"recipe {saved.recipe}, not {given[0]}/{given[1]}, recipe {given[2]} "
                         "(--preset, --size, --recipe)")
    cfg = dataclasses.replace(saved, **changes)
    fixed = [_option(k, getattr(saved, k)) for k in _FIXED_FIELDS if getattr(cfg, k) != getattr(saved, k)]
    if fixed:
        raise ValueError(f"{args.out / CKPT_NAME}: the run has {', '.join(fixed)}; a resumed run keeps "
                         "its --dense-final, --mask-ramp and --mask-ramp-start (start a new run to "
                         "change them)")
    changed = [f"--{k.replace('_', '-')} {getattr(cfg, k)} (was {getattr(saved, k)})"
               for k in _EXACT_FIELDS if getattr(cfg, k) != getattr(saved, k)]
    if changed:
        LOG.warning("resuming with %s: the run will not continue as it would have",
                    ", ".join(changed))
    return cfg


def _option(field: str, value: object) -> str:
    """``--mask-ramp 0.3``, or ``no --dense-final`` for None."""
    flag = "--" + field.replace("_", "-")
    return f"no {flag}" if value is None else f"{flag} {value}"


def run_paths(args: argparse.Namespace, sources: dict[str, str | None]) -> RunPaths:
    """The run's folders: as given, else the resumed run's (``sources``), else the defaults."""
    data = args.data or Path(sources.get("data") or DEFAULT_TRAIN_DIR)
    val_text = args.val if args.val is not None else sources.get("val", str(DEFAULT_VAL_DIR))
    val = None if val_text is None or val_text.lower() == "none" else Path(val_text)
    if val is not None and not val.is_dir():
        raise FileNotFoundError(f"{val}: no such validation folder (use --val none to skip)")
    if sources.get("data") and Path(sources["data"]).resolve() != data.resolve():
        LOG.warning("resuming on %s, the run started on %s: it will not continue as it would have",
                    data, sources["data"])
    return RunPaths(args.out, data, val)


@contextlib.contextmanager
def _info_lines() -> Iterator[None]:
    """Show the training modules' INFO records (resumed at ...) on stderr; warnings and errors
    are shown by :func:`run_reported`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    handler.addFilter(lambda record: record.levelno < logging.WARNING)
    logger = logging.getLogger("model_core.train")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def run(args: argparse.Namespace) -> int:
    """Run ``mdn train``; returns the exit code."""
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    if args.paired:
        from model_core.train.paired_run import run_paired

        return run_paired(args)
    if args.preset is None:
        raise ValueError("--preset is required (masked or baseline), unless --paired")
    if args.variant != "eager" or args.sdpa or args.baseline_init is not None:
        raise ValueError("--variant, --sdpa and --baseline-init are options of --paired")
    checkpoint = args.out / CKPT_NAME
    saved, sources = checkpoint_run(checkpoint) if args.resume and checkpoint.is_file() else (None, {})
    cfg = config_from_args(args, saved)
    init = None if args.init is None or args.init.lower() == "none" else args.init
    if args.resume and init:
        raise ValueError("--resume and --init exclude each other")
    paths = run_paths(args, sources)
    out, state = train(cfg, paths, device_name=args.device, init=init, resume=args.resume,
                       overwrite=args.overwrite, progress=not args.no_progress)
    main_process = int(os.environ.get("RANK", "0")) == 0  # torchrun starts one process per rank
    if main_process:
        print(f"weights written to {out}")
    if state.interrupted:
        if main_process:
            print(f"stopped at iteration {state.iteration} of {cfg.iterations}; continue with --resume")
        return 130
    return 0


def build_parser() -> OneLineParser:
    """The parser of ``mdn train``."""
    parser = OneLineParser(
        prog=PROG, description="Train the masked or the baseline denoiser (the paper's recipe).")
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mdn train`` (also ``python -m model_core.train``); returns the exit status.

    Errors the user can fix are one line on stderr (``mdn train: error: ...``), warnings too.
    """
    def body() -> int:
        with _info_lines():
            return run(build_parser().parse_args(argv))
    return run_reported(PROG, body)
