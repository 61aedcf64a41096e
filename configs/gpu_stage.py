"""One campaign stage on a lent GPU, inside a fixed wall-clock budget.

A GPU is lent to this project only now and then, for minutes (docs/TRAINING.md, "A stage on a
lent GPU"). This script makes the most of one such lease: it fine-tunes the shipped masked and
baseline weights side by side on the one GPU, with the same seed, batch and iterations, so that
the two keep equal budgets, and it fits the number of iterations to the time it is given:

1. both runs start with a provisional length and train for ``--probe`` seconds (or longer, until
   each has logged three rows of 50 iterations);
2. the iterations per second of the slower run, measured after its warm-up, set the stage's
   length so that both end ``--end`` seconds after the script started;
3. both runs are stopped (a stop writes their checkpoint) and resumed with that length, which
   re-plans the schedule (warm-up, cosine tail, dense share) over it; the probe falls inside the
   flat start of that schedule;
4. each run folder is packed into ``OUT/NAME-PRESET.tar.gz`` for the trip home, with the
   driver's log beside them.

If a run is still going at ``--hard-stop`` seconds it is stopped (its weights are exported at the
iteration it reached, which its card records). It needs only the project's source tree on the
Python path (``PYTHONPATH=$PWD python3 configs/gpu_stage.py`` from the repository root); the data
is in ``.gpu_data/train`` and ``.gpu_data/val`` by default (docs/TRAINING.md says how to fill them).
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

PRESETS = ("masked", "baseline")
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {text}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default="g1", help="stage name (run folders NAME-masked, NAME-baseline)")
    p.add_argument("--data", default=".gpu_data/train", help="folder of clean training images")
    p.add_argument("--val", default=".gpu_data/val", help="validation folder (its first --val-limit images)")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")),
                   help="where the packed run folders go (default: $OUT, the device tool's)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="folder of the run folders")
    p.add_argument("--size", default="lite")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=int(time.time()) % 10000)
    p.add_argument("--probe", type=float, default=60, help="seconds of the provisional start")
    p.add_argument("--end", type=float, default=470, help="seconds after the start by which both end")
    p.add_argument("--hard-stop", type=float, default=520, help="seconds after which runs are stopped")
    p.add_argument("--restart", type=float, default=30, help="seconds a stop and resume is planned to cost")
    p.add_argument("--validations", type=int, default=8, help="validations over the stage")
    p.add_argument("--val-limit", type=int, default=4)
    p.add_argument("--masked-init", default="masked")
    p.add_argument("--baseline-init", default="baseline")
    p.add_argument("--masked-options", default="", help="extra options of the masked run, e.g. "
                   "'--dense-final 0'")
    p.add_argument("--mdn", default=f"{shlex.quote(sys.executable)} -m model_core.cli",
                   help="command that runs mdn")
    return p.parse_args(argv)


def start(args: argparse.Namespace, preset: str, extra: list[str], resume: bool) -> subprocess.Popen:
    run = args.runs / f"{args.name}-{preset}"
    cmd = shlex.split(args.mdn) + ["train", "--preset", preset, "--recipe", "cpu", "--size", args.size,
                                   "--out", str(run), "--no-progress", "--device", args.device,
                                   "--threads", str(args.threads)]
    if resume:
        cmd += ["--resume"]
    else:
        init = args.masked_init if preset == "masked" else args.baseline_init
        cmd += ["--init", init, "--data", args.data, "--val", args.val, "--val-limit", str(args.val_limit),
                "--batch", str(args.batch), "--workers", str(args.workers), "--seed", str(args.seed),
                "--precision", "auto"]
        if preset == "masked":
            cmd += shlex.split(args.masked_options)
    cmd += extra
    say(" ".join(shlex.quote(c) for c in cmd))
    log = open(args.runs / f"{args.name}-{preset}.log", "a")  # noqa: SIM115 (lives with the process)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def log_rows(args: argparse.Namespace, preset: str) -> list[tuple[int, float]]:
    path = args.runs / f"{args.name}-{preset}" / "log.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        return [(int(r["iteration"]), float(r["elapsed_s"])) for r in csv.DictReader(f) if r["elapsed_s"]]


def seconds_per_iteration(rows: list[tuple[int, float]]) -> float | None:
    """From the rows after the first (which holds the start-up and warm-up)."""
    if len(rows) < 3:
        return None
    (i0, t0), (i1, t1) = rows[1], rows[-1]
    return (t1 - t0) / (i1 - i0)


def plan(done: int, seconds_per_it: float, seconds_left: float, validations: int) -> tuple[int, int]:
    """The stage's length (a multiple of 100, at least ``done`` + 100) and validation interval
    (a multiple of 50, at least 100) for ``seconds_left`` more seconds of training."""
    total = max(done + 100, int(done + seconds_left / seconds_per_it) // 100 * 100)
    return total, max(100, total // validations // 50 * 50)


def wait_all(procs: dict[str, subprocess.Popen], deadline: float) -> None:
    """Wait for every process; past ``deadline`` (seconds since T0) stop those still running."""
    while any(p.poll() is None for p in procs.values()):
        if time.monotonic() - T0 > deadline:
            for preset, p in procs.items():
                if p.poll() is None:
                    say(f"{preset}: past the hard stop, stopping it")
                    p.send_signal(signal.SIGTERM)
            deadline = float("inf")
        time.sleep(1)
    for preset, p in procs.items():
        say(f"{preset}: exit status {p.returncode}")


def pack(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    for preset in PRESETS:
        run = args.runs / f"{args.name}-{preset}"
        target = args.out / f"{args.name}-{preset}.tar.gz"
        with tarfile.open(target, "w:gz") as tar:
            if run.is_dir():
                tar.add(run, arcname=run.name)
            log = args.runs / f"{args.name}-{preset}.log"
            if log.is_file():
                tar.add(log, arcname=log.name)
        say(f"packed {target} ({target.stat().st_size / 1e6:.1f} MB)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.runs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    say(f"stage {args.name}: seed {args.seed}, batch {args.batch}, size {args.size}, end at {args.end:.0f} s")
    provisional = ["--iterations", "1000000", "--val-every", "1000000", "--checkpoint-every", "1000000"]
    procs = {p: start(args, p, provisional, resume=False) for p in PRESETS}
    # At least --probe seconds, longer (up to twice that) until both logs hold three rows.
    while all(p.poll() is None for p in procs.values()):
        elapsed = time.monotonic() - T0
        short = any(len(log_rows(args, k)) < 3 for k in PRESETS)
        if elapsed > 2 * args.probe or (elapsed > args.probe and not short):
            break
        time.sleep(1)
    failed = [k for k, p in procs.items() if p.poll() is not None]
    rates = {k: seconds_per_iteration(log_rows(args, k)) for k in PRESETS}
    say(f"probe: seconds per iteration {rates}")
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    wait_all(procs, time.monotonic() - T0 + 60)
    if failed or None in rates.values():
        say(f"a run failed or logged too little in the probe ({failed or rates}): see the logs")
        pack(args)
        return 1
    done = min(log_rows(args, k)[-1][0] for k in PRESETS)
    slowest = max(rates.values())
    left = args.end - (time.monotonic() - T0) - args.restart
    total, every = plan(done, slowest, left, args.validations)
    say(f"stage length {total} iterations (at {slowest * 1000:.1f} ms each), validation every {every}")
    final = ["--iterations", str(total), "--val-every", str(every), "--checkpoint-every", str(every)]
    procs = {p: start(args, p, final, resume=True) for p in PRESETS}
    wait_all(procs, args.hard_stop)
    pack(args)
    return 0 if all(p.returncode == 0 for p in procs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
