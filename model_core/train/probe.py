"""Which paired step runs fastest here: a probe for the first minute of a GPU lease.

Times each step variant (eager, ``torch.compile``, compiled with CUDA graphs; with or without
SDPA) at each batch for a few dozen steps of the paired path, checks that it is numerically
sound (its first losses finite and equal to the eager step's on the same batch and the same
initial weights, within bf16's tolerance), and measures the device's own matrix-product rate,
so the table says what share of the hardware the step uses. The fastest sound variant is the
pick; ``configs/gpu_stage.py`` trains with it.

``python -m model_core.train.probe --data DIR --size lite --json probe.json``
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from model_core.argparsing import OneLineParser, run_reported
from model_core.device import pick_device, resolve_precision
from model_core.fileio import atomic_replace
from model_core.network.flops import training_flops
from model_core.train.config import MODEL_SIZES, RECIPES, TrainConfig
from model_core.train.loop import machine_description
from model_core.train.paired import VARIANTS, PairedTrainer, baseline_config, new_paired_state
from model_core.train.resident import BatchMaker, ResidentImages, load_resident

PROG = "python -m model_core.train.probe"


@dataclass(frozen=True)
class ProbeRow:
    """One variant at one batch. Rates are per model (both models train every step)."""

    variant: str  # as asked
    ran: str  # what ran after fallbacks
    sdpa: bool
    batch: int
    seconds_per_step: float = math.nan
    patches_per_s: float = math.nan
    tflops: float = math.nan  # both models together
    matmul_share: float = math.nan
    losses: tuple[float, ...] = ()
    eager_losses: tuple[float, ...] = ()
    sound: bool = False
    note: str = ""


@dataclass
class ProbeReport:
    """The probe's findings (``to_json`` for the file gpu_stage reads)."""

    device: str
    precision: str
    matmul_tflops: float
    flops_per_patch: float
    rows: list[ProbeRow] = field(default_factory=list)
    pick: ProbeRow | None = None

    def to_json(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    """``value`` with NaN as None (JSON has no NaN) and tuples as lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def sync(device: torch.device) -> None:
    """Wait for the device (timing only)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int | None = None, repeats: int = 5) -> float:
    """Best-of rate of an ``n`` x ``n`` x ``n`` matrix product on ``device``, in TFLOP/s."""
    n = n or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = math.inf
    for _ in range(repeats + 1):  # the first call warms up
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e12


def _trainer(cfg: TrainConfig, device: torch.device, precision: str, variant: str,
             sdpa: bool) -> PairedTrainer:
    """A fresh pair, identical initial weights for every variant (``new_state`` seeds them)."""
    cfgs = (cfg, baseline_config(cfg))
    states = tuple(new_paired_state(c, device) for c in cfgs)
    return PairedTrainer(states, cfgs, device, precision, variant, sdpa)


def sound(losses: Sequence[float], reference: Sequence[float], precision: str) -> bool:
    """Finite and equal to the eager step's losses within the precision's tolerance."""
    rtol = 3e-2 if precision == "bf16" else 1e-3
    return all(math.isfinite(a) and abs(a - b) <= rtol * abs(b) + 1e-5
               for a, b in zip(losses, reference, strict=True))


def time_variant(maker: BatchMaker, device: torch.device, precision: str, variant: str, sdpa: bool,
                 warmup: int, steps: int, reference: Sequence[float]) -> ProbeRow:
    """``warmup`` untimed steps (compiling happens there), then ``steps`` timed ones."""
    cfg = maker.cfg
    trainer = _trainer(cfg, device, precision, variant, sdpa)
    first = trainer.step(maker(0)).tolist()
    trainer.count(0.0)
    for it in range(1, warmup):
        trainer.step(maker(it))
        trainer.count(0.0)
    sync(device)
    start = time.perf_counter()
    seen = []
    for it in range(warmup, warmup + steps):
        seen.append(trainer.step(maker(it)))
        trainer.count(0.0)
    finite = bool(torch.isfinite(torch.stack(seen)).all())  # read once, after the timing
    seconds = (time.perf_counter() - start) / steps
    ok = finite and sound(first, reference, precision)
    note = "" if ok else ("a loss is not finite" if not finite else "losses differ from the eager step's")
    if trainer.fallbacks:
        note = "; ".join(filter(None, [note, *trainer.fallbacks]))
    return ProbeRow(variant, trainer.variant, sdpa, cfg.batch, seconds, cfg.batch / seconds,
                    losses=tuple(first), eager_losses=tuple(reference), sound=ok, note=note)


def run_probe(images: ResidentImages, cfg: TrainConfig, *, variants: Sequence[str] = VARIANTS,
              batches: Sequence[int] = (64, 128, 256), sdpa_modes: Sequence[bool] = (False,),
              steps: int = 30, warmup: int = 3, budget: float = math.inf,
              clock: Callable[[], float] = time.monotonic,
              on_row: Callable[[ProbeReport], None] | None = None,
              max_batch: int | None = None) -> ProbeReport:
    """Time every (variant, SDPA, batch) in that order; past ``budget`` seconds the rest are
    skipped (listed with a note). ``cfg`` is the masked run's (its batch is replaced); the pick
    is the fastest sound row of at most ``max_batch`` patches.

    ``on_row`` is called after each measured row (the probe's command writes its file there,
    so a probe stopped from outside still leaves what it measured)."""
    device = images.device
    precision = resolve_precision(cfg.precision, device)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    report = ProbeReport(machine_description(device), precision, matmul_tflops(device, dtype),
                         training_flops(cfg.model_config(), cfg.patch))
    start, references = clock(), {}
    for variant in variants:
        for sdpa in sdpa_modes:
            for batch in batches:
                if clock() - start > budget:
                    report.rows.append(ProbeRow(variant, "", sdpa, batch, note="skipped: over the budget"))
                    continue
                maker = BatchMaker(images, dataclasses.replace(cfg, batch=batch))
                report.rows.append(_measured(report, maker, variant, sdpa, warmup, steps, references))
                report.pick = pick(report.rows, max_batch)
                if on_row is not None:
                    on_row(report)
    return report


def _measured(report: ProbeReport, maker: BatchMaker, variant: str, sdpa: bool, warmup: int, steps: int,
              references: dict[int, list[float]]) -> ProbeRow:
    """One row, with the rates filled in; out of memory is a row that says so."""
    device, batch = maker.images.device, maker.cfg.batch
    try:
        if batch not in references:  # the eager step's first losses on batch 0
            references[batch] = _trainer(maker.cfg, device, report.precision, "eager", False).step(
                maker(0)).tolist()
        row = time_variant(maker, device, report.precision, variant, sdpa, warmup, steps, references[batch])
    except torch.cuda.OutOfMemoryError:
        return ProbeRow(variant, "", sdpa, batch, note="out of memory")
    finally:
        _release(device)
    tflops = 2 * row.patches_per_s * report.flops_per_patch / 1e12
    return dataclasses.replace(row, tflops=tflops, matmul_share=tflops / report.matmul_tflops)


def _release(device: torch.device) -> None:
    """Free what a row left on the GPU (its models, compiled code, CUDA-graph memory pools),
    so that the next row starts from the same free memory."""
    if device.type != "cuda":
        return
    gc.collect()
    torch.compiler.reset()
    torch.cuda.empty_cache()


def pick(rows: Sequence[ProbeRow], max_batch: int | None = None) -> ProbeRow | None:
    """The sound row with the most patches per second (at most ``max_batch``), None if none."""
    fit = [r for r in rows if r.sound and (max_batch is None or r.batch <= max_batch)]
    return max(fit, key=lambda r: r.patches_per_s, default=None)


def render(report: ProbeReport) -> str:
    """The probe's table, as printed."""
    lines = [f"device: {report.device}, {report.precision}; matrix-product rate {report.matmul_tflops:.2f} "
             f"TFLOP/s; {report.flops_per_patch / 1e9:.2f} GFLOP per training patch",
             f"{'variant':20s} {'sdpa':4s} {'batch':>5s} {'s/step':>8s} {'patches/s':>10s} "
             f"{'TFLOP/s':>8s} {'of mm':>6s}  sound"]
    for r in report.rows:
        shown = r.variant if r.ran in ("", r.variant) else f"{r.variant}->{r.ran}"
        lines.append(f"{shown:20s} {'on' if r.sdpa else 'off':4s} {r.batch:5d} {r.seconds_per_step:8.4f} "
                     f"{r.patches_per_s:10.1f} {r.tflops:8.3f} {r.matmul_share:6.1%}  "
                     f"{'yes' if r.sound else 'NO'}{'  (' + r.note + ')' if r.note else ''}")
    if report.pick is not None:
        p = report.pick
        lines.append(f"pick: {p.ran}{' with SDPA' if p.sdpa else ''}, batch {p.batch}: "
                     f"{p.patches_per_s:.1f} patches/s per model")
    else:
        lines.append("pick: none (no variant was sound)")
    return "\n".join(lines)


def profile_step(images: ResidentImages, cfg: TrainConfig, row: ProbeRow, count: int = 15) -> str:
    """torch.profiler over one step of ``row``'s variant (after three warm-up steps): the
    operators and kernels with the most self time."""
    from torch.profiler import ProfilerActivity, profile

    device = images.device
    maker = BatchMaker(images, dataclasses.replace(cfg, batch=row.batch))
    trainer = _trainer(maker.cfg, device, resolve_precision(cfg.precision, device), row.ran, row.sdpa)
    for it in range(3):
        trainer.step(maker(it))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        trainer.step(maker(3))
        sync(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=count)


def build_parser() -> OneLineParser:
    """The probe's command line."""
    p = OneLineParser(prog=PROG, description="Time the paired training step's variants on this device.")
    p.add_argument("--data", type=Path, required=True, help="folder of clean training images")
    p.add_argument("--size", choices=tuple(MODEL_SIZES), default="lite")
    p.add_argument("--recipe", choices=tuple(RECIPES), default="cpu")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="auto")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA if present)")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--batches", nargs="+", type=int, default=[64, 128, 256])
    p.add_argument("--sdpa", choices=("off", "on", "both"), default="off",
                   help="attention through F.scaled_dot_product_attention: off, on, or time both")
    p.add_argument("--steps", type=int, default=30, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per row (compiling happens there)")
    p.add_argument("--budget", type=float, default=math.inf, help="seconds after which rows are skipped")
    p.add_argument("--max-batch", type=int, default=None,
                   help="the pick's largest batch (a batch above 64 departs from the paper)")
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--profile", action="store_true", help="profile one step of the pick: top kernels")
    p.add_argument("--threads", type=int, help="CPU threads")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe; exit status 0 when a variant was sound, 1 when none was."""
    def body() -> int:
        args = build_parser().parse_args(argv)
        if args.steps < 1 or args.warmup < 1 or min(args.batches) < 1:
            raise ValueError("--steps, --warmup and --batches must be >= 1")
        if args.threads:
            torch.set_num_threads(args.threads)
        device = pick_device(args.device)
        cfg = TrainConfig.preset_config("masked", args.recipe, model_size=args.size, patch=args.patch,
                                        precision=args.precision, iterations=100_000)
        images = load_resident(args.data, cfg.patch, device)
        modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.sdpa]

        def save(report: ProbeReport, quiet: bool = False) -> None:
            if not quiet:
                print(render(report).splitlines()[-2], flush=True)  # the row just measured
            if args.json:
                text = json.dumps(report.to_json(), indent=2) + "\n"
                atomic_replace(args.json, lambda tmp: Path(tmp).write_text(text))

        report = run_probe(images, cfg, variants=args.variants, batches=args.batches, sdpa_modes=modes,
                           steps=args.steps, warmup=args.warmup, budget=args.budget, on_row=save,
                           max_batch=args.max_batch)
        save(report, quiet=True)
        print(render(report), flush=True)
        if args.profile and report.pick is not None:
            print(profile_step(images, cfg, report.pick), flush=True)
        return 0 if report.pick is not None else 1
    return run_reported(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
