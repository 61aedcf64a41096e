"""``mdn train``: command-line front end of the training loop."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch

from model_core.argparsing import OneLineParser
from model_core.train.config import DEFAULT_TRAIN_DIR, DEFAULT_VAL_DIR, MODEL_SIZES, TrainConfig
from model_core.train.run import RunPaths, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``mdn train``."""
    parser.add_argument("--preset", choices=("masked", "baseline"), required=True,
                        help="the paper's recipe with masks (masked) or without (baseline)")
    parser.add_argument("--size", choices=tuple(MODEL_SIZES), default="paper",
                        help="model size: the paper's configuration, or a smaller one for CPUs")
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log, model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_TRAIN_DIR, help="folder of clean images")
    parser.add_argument("--val", type=Path, default=DEFAULT_VAL_DIR,
                        help="validation folder ('none' to skip)")
    parser.add_argument("--iterations", type=int, help="total iterations (default: the paper's 450k)")
    parser.add_argument("--patch", type=int, help="side of the training crops (default 64)")
    parser.add_argument("--batch", type=int, help="patches per iteration and process (default 8)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default 1e-4)")
    parser.add_argument("--milestones", type=int, nargs="*", help="learning-rate decay iterations")
    parser.add_argument("--warmup", type=int,
                        help="iterations of linear learning-rate warm-up (default 0; use ~100 with --init)")
    parser.add_argument("--ema", type=float, dest="ema_decay", help="EMA decay (default 0.999)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), help="default: auto")
    parser.add_argument("--checkpoint-every", type=int, help="iterations between checkpoints")
    parser.add_argument("--val-every", type=int, help="iterations between validations")
    parser.add_argument("--val-limit", type=int, help="validation images used")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default 1)")
    parser.add_argument("--seed", type=int, help="seed of data, noise and masks (default 0)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if present)")
    parser.add_argument("--init", type=Path, help="warm-start from a weights file")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt exactly")
    parser.add_argument("--overwrite", action="store_true",
                        help="start a new run in an OUT that holds one (its checkpoint and log are replaced)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


_FIELDS = ("iterations", "patch", "batch", "lr", "milestones", "warmup", "ema_decay", "precision",
           "checkpoint_every", "val_every", "val_limit", "workers", "seed")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset with the options the user gave."""
    changes = {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}
    return TrainConfig.preset_config(args.preset, model_size=args.size, **changes)


def run(args: argparse.Namespace) -> int:
    """Run ``mdn train``; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    cfg = config_from_args(args)
    val = None if str(args.val).lower() == "none" else args.val
    if val is not None and not val.is_dir():
        raise FileNotFoundError(f"{val}: no such validation folder (use --val none to skip)")
    if args.resume and args.init:
        raise ValueError("--resume and --init exclude each other")
    paths = RunPaths(args.out, args.data, val)
    out, state = train(cfg, paths, device_name=args.device, init=args.init, resume=args.resume,
                       overwrite=args.overwrite, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun starts one process per rank
        print(f"weights written to {out}")
    if state.interrupted:
        print(f"stopped at iteration {state.iteration} of {cfg.iterations}; continue with --resume")
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m model_core.train``)."""
    parser = OneLineParser(
        prog="mdn train", description="Train the masked or the baseline denoiser (the paper's recipe).")
    add_arguments(parser)
    return run(parser.parse_args(argv))
