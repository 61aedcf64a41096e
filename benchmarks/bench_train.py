"""Training-step benchmark of mdn (not a test): seconds per optimisation step, and where they go.

Times :func:`model_core.train.loop.train_step` (noise and masks drawn, forward, L1 loss,
backward, Adam, EMA) for each preset and model size at the paper's patch (64x64) and a batch of
8, the setting the training issue quotes for the paper's own code. Each row is the median of
``--steps`` timed steps after ``--warm-up`` untimed ones, with random patches (the content does
not change the work). With ``--profile`` it also lists the operators that take the most time in
one step. Results go to stdout and to ``docs/TRAINING_SPEED.md``.

Usage::

    python -m benchmarks.bench_train --sizes paper lite --presets masked baseline
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_inference import machine, matmul_gflops, syncer  # noqa: E402
from model_core.device import configure_cpu_threads, resolve_precision  # noqa: E402
from model_core.network.flops import training_flops  # noqa: E402
from model_core.train.config import MODEL_SIZES, TrainConfig  # noqa: E402
from model_core.train.loop import new_state, step_generator, train_step  # noqa: E402
from model_core.train.paired import PairedTrainer, baseline_config, new_paired_state  # noqa: E402
from model_core.train.resident import BatchMaker, pack_images  # noqa: E402

REPORT = ROOT / "docs" / "TRAINING_SPEED.md"
NOTES = ROOT / "benchmarks" / "train_notes.md"


def time_steps(cfg: TrainConfig, device: torch.device, precision: str, warm_up: int,
               steps: int) -> tuple[list[float], Any]:
    """Seconds of each timed step of a fresh model (after ``warm_up`` untimed ones), and its state."""
    state = new_state(cfg, device)
    gen_data = torch.Generator().manual_seed(cfg.seed)
    sync = syncer(device)
    times = []
    for it in range(warm_up + steps):
        clean = torch.rand(cfg.batch, 3, cfg.patch, cfg.patch, generator=gen_data).to(device)
        gen = step_generator(cfg, it, 0, device)
        sync()
        start = time.perf_counter()
        train_step(state, state.model, clean, cfg, gen, precision)
        sync()
        if it >= warm_up:
            times.append(time.perf_counter() - start)
    return times, state


def time_paired(cfg: TrainConfig, device: torch.device, precision: str, warm_up: int,
                steps: int) -> list[float]:
    """Seconds of each timed step of the paired path (both models, :mod:`model_core.train.paired`,
    eager), its batches drawn from resident random 256x256 images."""
    rng = np.random.default_rng(cfg.seed)
    images = pack_images([rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(8)],
                         [f"random{i}" for i in range(8)], device)
    maker = BatchMaker(images, cfg)
    cfgs = (cfg, baseline_config(cfg))
    trainer = PairedTrainer(tuple(new_paired_state(c, device) for c in cfgs), cfgs, device, precision)
    sync = syncer(device)
    times = []
    for it in range(warm_up + steps):
        sync()
        start = time.perf_counter()
        trainer.step(maker(it))
        trainer.count(0.0)
        sync()
        if it >= warm_up:
            times.append(time.perf_counter() - start)
    return times


def top_operators(state: Any, cfg: TrainConfig, device: torch.device, precision: str,
                  count: int) -> list[dict[str, Any]]:
    """The operators with the most self time in one profiled step, with their share of it."""
    clean = torch.rand(cfg.batch, 3, cfg.patch, cfg.patch).to(device)
    gen = step_generator(cfg, 10_000, 0, device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        train_step(state, state.model, clean, cfg, gen, precision)
    events = prof.key_averages()
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    total = sum(getattr(e, attr) for e in events) or 1.0
    ranked = sorted(events, key=lambda e: getattr(e, attr), reverse=True)[:count]
    return [{"op": e.key, "share": getattr(e, attr) / total, "calls": e.count} for e in ranked]


def matmul_rates(device: torch.device, precisions: set[str]) -> dict[str, float]:
    """The machine's best 2048^3 matrix-product rate (GFLOP/s) in each precision timed."""
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    return {p: matmul_gflops(device, dtypes[p]) for p in sorted(precisions)}


def render(rows: list[dict[str, Any]], ops: dict[str, list[dict[str, Any]]], info: dict[str, Any],
           notes: str, rates: dict[str, float]) -> str:
    """The Markdown report: the timing table, the operator tables, then ``notes``."""
    lines = ["# Training-step speed", "",
             "Written by `python -m benchmarks.bench_train` (do not edit by hand; rerun it).", "",
             f"Machine: {info['cpu']}, {info['physical_cores']} cores / {info['logical_cpus']} logical, "
             f"native bf16: {info['cpu_bf16']}, torch {info['torch']}, {info['threads']} threads, "
             f"CUDA: {info['cuda'] or 'none'}.", "",
             "One step = noise and masks drawn, forward, L1 loss, backward, Adam, EMA update. "
             "Median of the timed steps; GFLOP/s counts the forward pass's matrix products and "
             "convolutions three times (forward, and two products per layer backward). \"of matmul\" "
             "is that rate's share of the machine's best matrix-product rate in the same precision, "
             "measured in the same run (2048^3: "
             + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in rates.items()) + "): the figure that "
             "carries across machines.", "",
             "| device | size | preset | precision | batch x patch | s/step | patches/s | GFLOP/s "
             "| of matmul |",
             "|---|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['device']} | {r['size']} | {r['preset']} | {r['precision']} | "
                     f"{r['batch']} x {r['patch']} | {r['seconds']:.3f} | {r['batch'] / r['seconds']:.1f} | "
                     f"{r['gflops']:.1f} | {r['gflops'] / rates[r['precision']]:.0%} |")
    for key, table in ops.items():
        lines += ["", f"Where one step's time goes ({key}), by operator self time:", "",
                  "| operator | share | calls |", "|---|---:|---:|"]
        lines += [f"| `{o['op']}` | {o['share']:.0%} | {o['calls']} |" for o in table]
    if notes:
        lines += ["", notes.rstrip()]
    return "\n".join(lines) + "\n"


def paired_row(size: str, asked: str, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    """The paired path's row: s/step of both models, patches/s per model, GFLOP/s of both."""
    precision = resolve_precision(asked, device)
    cfg = TrainConfig.preset_config("masked", model_size=size, batch=args.batch, patch=args.patch,
                                    precision=precision)
    times = time_paired(cfg, device, precision, args.warm_up, args.steps)
    seconds = statistics.median(times)
    flops = 2 * training_flops(cfg.model_config(), args.patch) * args.batch  # both models
    print(f"[{device}] {size:5s} paired   {precision}: {seconds:.3f} s/step for both "
          f"(min {min(times):.3f}, max {max(times):.3f})", flush=True)
    # patches/s in the table is batch / s: per model here, as both models take the batch each step.
    return {"device": device.type, "size": size, "preset": "both (paired)", "precision": precision,
            "batch": args.batch, "patch": args.patch, "seconds": seconds, "gflops": flops / seconds / 1e9}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["paper", "lite"], choices=tuple(MODEL_SIZES))
    parser.add_argument("--presets", nargs="+", default=["masked", "baseline"],
                        choices=["masked", "baseline"])
    parser.add_argument("--precisions", nargs="+", default=["auto"], choices=["fp32", "bf16", "auto"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--warm-up", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="list the slowest operators of each size")
    parser.add_argument("--paired", action="store_true",
                        help="also time the paired path (mdn train --paired: both models in one step; "
                             "patches/s per model, GFLOP/s of both)")
    parser.add_argument("--notes", type=Path, default=NOTES, metavar="FILE",
                        help="Markdown file appended to the report (default: benchmarks/train_notes.md, "
                             "the report's hand-written part)")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/ alone")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:  # read before the minutes of timing, not after
        notes = args.notes.read_text() if args.notes else ""
    except OSError as exc:
        parser.error(f"--notes: {exc.strerror}: {args.notes}")
    if args.threads:
        torch.set_num_threads(args.threads)
    configure_cpu_threads()
    device = torch.device(args.device)
    rows, ops = [], {}
    rates = matmul_rates(device, {resolve_precision(p, device) for p in args.precisions})
    print("matmul rate: " + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in rates.items()), flush=True)
    for size in args.sizes:
        for preset in args.presets:
            for asked in args.precisions:
                precision = resolve_precision(asked, device)
                cfg = TrainConfig.preset_config(preset, model_size=size, batch=args.batch,
                                                patch=args.patch, precision=precision)
                times, state = time_steps(cfg, device, precision, args.warm_up, args.steps)
                seconds = statistics.median(times)
                flops = training_flops(cfg.model_config(), args.patch) * args.batch
                rows.append({"device": device.type, "size": size, "preset": preset, "precision": precision,
                             "batch": args.batch, "patch": args.patch, "seconds": seconds,
                             "gflops": flops / seconds / 1e9})
                print(f"[{device}] {size:5s} {preset:8s} {precision}: {seconds:.3f} s/step "
                      f"(min {min(times):.3f}, max {max(times):.3f})", flush=True)
                if args.profile and preset == args.presets[0] and asked == args.precisions[0]:
                    ops[f"{size}, {preset}, {precision}"] = top_operators(state, cfg, device, precision, 12)
        if args.paired:
            for asked in args.precisions:
                rows.append(paired_row(size, asked, device, args))
    for key, table in ops.items():
        print(f"\n{key}:")
        for o in table:
            print(f"  {o['share']:6.1%}  {o['calls']:5d}  {o['op']}")
    if args.no_report:
        return
    REPORT.write_text(render(rows, ops, machine(), notes, rates))
    print(f"wrote {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
