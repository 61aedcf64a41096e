"""One campaign stage on a lent GPU, inside a fixed wall-clock budget.

A GPU is lent to this project only now and then, for minutes (docs/TRAINING.md, "On a lent
GPU"). This script makes the most of one such lease: it fine-tunes the shipped masked and
baseline weights side by side on the one GPU, with the same seed, batch and iterations, so that
the two keep equal budgets, and it fits the number of iterations to the time it is given.

By default (``--path paired``) both models train in one process (``mdn train --paired``: the
data resident on the GPU, no read-back inside the step), after a probe
(``python -m model_core.train.probe``, at most ``--probe-budget`` seconds) has timed the step's
variants and picked the fastest sound one at a batch of at most ``--max-batch``; its table and
JSON come back as ``NAME-probe.log`` and ``NAME-probe.json``. ``--path two-runs`` is the path
of stage g1: two ``mdn train`` processes sharing the GPU. Either way:

1. the runs start with a provisional length and train for ``--probe`` seconds (or longer, until
   each has logged three rows of 50 iterations);
2. the iterations per second of the slower run, measured after its warm-up, set the stage's
   length so that both end ``--end`` seconds after the script started;
3. both runs are stopped (a stop writes their checkpoint) and resumed with that length, which
   re-plans the schedule (warm-up, cosine tail, dense share) over it; the probe falls inside the
   flat start of the learning rate (a falling dense share, ``--dense-final``, was planned over the
   provisional length during the probe, so it starts its fall a little late);
4. each run folder is packed into ``OUT/NAME-PRESET.tar.gz`` for the trip home, with the
   driver's log beside them.

The length counts from the last logged row (every 50 iterations), so a stage may end up to 50
iterations after ``--end``. If a run is still going at ``--hard-stop`` seconds it is stopped (its
weights are exported at the iteration it reached, which its card records; check that both reached
the planned length before publishing them as a pair), and killed if it has not ended
``GRACE`` seconds later. The run folders are packed whatever happened.

It needs only the project's source tree on the Python path (``PYTHONPATH=$PWD python3
configs/gpu_stage.py`` from the repository root); the data is in ``.gpu_data/train`` and
``.gpu_data/val`` by default (docs/TRAINING.md says how to fill them).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

PRESETS = ("masked", "baseline")
T0 = time.monotonic()
GRACE = 30.0  # seconds between a stop (SIGTERM) and a kill


class Run:
    """One ``mdn train`` process and its log file."""

    def __init__(self, cmd: list[str], log_path: Path) -> None:
        self.log = log_path.open("a")
        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.stopped_at: float | None = None

    def running(self) -> bool:
        """Whether the process is still going (closes its log once it has ended)."""
        if self.process.poll() is None:
            return True
        self.log.close()
        return False

    def stop(self) -> None:
        """SIGTERM now (it finishes the iteration under way and writes its checkpoint), SIGKILL when
        called again ``GRACE`` seconds later."""
        now = time.monotonic()
        if self.stopped_at is None:
            self.process.send_signal(signal.SIGTERM)
            self.stopped_at = now
        elif now - self.stopped_at > GRACE:
            self.process.kill()


def say(text: str) -> None:
    """Print ``text`` with the seconds since the start."""
    print(f"[{time.monotonic() - T0:6.1f} s] {text}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
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
    p.add_argument("--path", choices=("paired", "two-runs"), default="paired",
                   help="paired: one process trains both (after the probe); two-runs: stage g1's way")
    p.add_argument("--probe-budget", type=float, default=90,
                   help="seconds after which the probe starts no new row")
    p.add_argument("--probe-options", default="--variants eager compile+cudagraphs compile "
                   "--batches 64 256 --sdpa both --steps 20",
                   help="options of python -m model_core.train.probe")
    p.add_argument("--max-batch", type=int, default=64,
                   help="the largest batch the probe may pick for the stage (above 64 departs from "
                        "the paper; the table times larger ones anyway)")
    return p.parse_args(argv)


def run_dir(args: argparse.Namespace, preset: str) -> Path:
    """The run folder of ``preset``: ``RUNS/NAME-PRESET``, or ``RUNS/NAME/PRESET`` on the paired
    path (``mdn train --paired --out RUNS/NAME``)."""
    if args.path == "paired":
        return args.runs / args.name / preset
    return args.runs / f"{args.name}-{preset}"


def start(args: argparse.Namespace, preset: str, extra: list[str], resume: bool) -> Run:
    """Start (or, with ``resume``, continue) the run of ``preset`` with ``extra`` options last."""
    run = run_dir(args, preset)
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
    return Run(cmd, args.runs / f"{args.name}-{preset}.log")


def log_rows(args: argparse.Namespace, preset: str) -> list[tuple[int, float]]:
    """(iteration, elapsed seconds) of each complete row of the run's ``log.csv``."""
    path = run_dir(args, preset) / "log.csv"
    if not path.is_file():
        return []
    text = path.read_text()
    lines = text.splitlines()
    if not text.endswith("\n"):
        lines = lines[:-1]  # a row still being written
    return [(int(r["iteration"]), float(r["elapsed_s"])) for r in csv.DictReader(lines) if r["elapsed_s"]]


def seconds_per_iteration(rows: list[tuple[int, float]]) -> float | None:
    """From the rows after the first (which holds the start-up and warm-up)."""
    if len(rows) < 3:
        return None
    (i0, t0), (i1, t1) = rows[1], rows[-1]
    return (t1 - t0) / (i1 - i0)


def plan(done: int, seconds_per_it: float, seconds_left: float, validations: int) -> tuple[int, int]:
    """The stage's length and validation interval for ``seconds_left`` more seconds of training.

    The length is a multiple of 100, at least ``done`` + 100; the interval a multiple of 50, at
    least 100, giving about ``validations`` validations.
    """
    total = max(done + 100, int(done + seconds_left / seconds_per_it) // 100 * 100)
    return total, max(100, total // validations // 50 * 50)


def wait_all(runs: dict[str, Run], deadline: float) -> None:
    """Wait for every run; past ``deadline`` (seconds since T0) stop those still going, and kill
    them ``GRACE`` seconds later."""
    while any(run.running() for run in runs.values()):
        if time.monotonic() - T0 > deadline:
            for preset, run in runs.items():
                if run.running():
                    if run.stopped_at is None:
                        say(f"{preset}: past its deadline, stopping it")
                    run.stop()
        time.sleep(1)
    for preset, run in runs.items():
        say(f"{preset}: exit status {run.process.returncode}")


def pack(args: argparse.Namespace) -> None:
    """Each run folder and its log into ``OUT/NAME-PRESET.tar.gz``."""
    args.out.mkdir(parents=True, exist_ok=True)
    for preset in PRESETS:
        run = run_dir(args, preset)
        target = args.out / f"{args.name}-{preset}.tar.gz"
        with tarfile.open(target, "w:gz") as tar:
            if run.is_dir():  # NAME-PRESET on either path, so it unpacks as stage g1's did
                tar.add(run, arcname=f"{args.name}-{preset}")
            for log in (args.runs / f"{args.name}-{preset}.log", args.runs / f"{args.name}-paired.log"):
                if log.is_file():
                    tar.add(log, arcname=log.name)
        say(f"packed {target} ({target.stat().st_size / 1e6:.1f} MB)")
    for name in (f"{args.name}-probe.log", f"{args.name}-probe.json"):
        if (args.runs / name).is_file():
            shutil.copyfile(args.runs / name, args.out / name)


def main(argv: list[str] | None = None) -> int:
    """Run the stage; returns 0 when both runs ended at the planned length."""
    args = parse_args(argv)
    args.runs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    say(f"stage {args.name}: seed {args.seed}, batch {args.batch}, size {args.size}, end at {args.end:.0f} s")
    try:
        return stage(args)
    finally:
        pack(args)


def probe_pick(path: Path) -> dict | None:
    """The probe's pick from its JSON file (``variant``, ``sdpa``, ``batch``, ...), None if the
    file is missing, unreadable or names no sound variant."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    found = report.get("pick") if isinstance(report, dict) else None
    return found if isinstance(found, dict) and found.get("ran") and found.get("batch") else None


def run_probe(args: argparse.Namespace) -> dict | None:
    """Run the probe and return its pick. It starts no row after its budget; 45 s after it, it is
    stopped (the file holds every row measured by then) and killed ``GRACE`` seconds later."""
    out = args.runs / f"{args.name}-probe.json"
    python = shlex.split(args.mdn)[:-2] if args.mdn.endswith("-m model_core.cli") else [sys.executable]
    cmd = [*python, "-m", "model_core.train.probe", "--data", args.data, "--size", args.size,
           "--device", args.device, "--budget", str(args.probe_budget), "--max-batch", str(args.max_batch),
           "--json", str(out), "--threads", str(args.threads), "--profile", *shlex.split(args.probe_options)]
    say(" ".join(shlex.quote(c) for c in cmd))
    probe = Run(cmd, args.runs / f"{args.name}-probe.log")
    wait_all({"probe": probe}, time.monotonic() - T0 + args.probe_budget + 45)
    found = probe_pick(out)
    say(f"probe pick: {found}")
    return found


def paired_options(pick: dict | None, batch: int) -> list[str]:
    """``mdn train --paired`` options of the probe's pick (the eager step at ``batch`` without one)."""
    if pick is None:
        return ["--variant", "eager", "--batch", str(batch)]
    sdpa = ["--sdpa"] if pick.get("sdpa") else []
    return ["--variant", pick["ran"], "--batch", str(pick["batch"]), *sdpa]


def start_paired(args: argparse.Namespace, extra: list[str], resume: bool, step: list[str]) -> Run:
    """Start (or continue) the paired run of both presets in ``RUNS/NAME``."""
    cmd = shlex.split(args.mdn) + ["train", "--paired", "--recipe", "cpu", "--size", args.size,
                                   "--out", str(args.runs / args.name), "--no-progress", "--device",
                                   args.device, "--threads", str(args.threads), *step]
    if resume:
        cmd += ["--resume"]
    else:
        cmd += ["--init", args.masked_init, "--baseline-init", args.baseline_init, "--data", args.data,
                "--val", args.val, "--val-limit", str(args.val_limit), "--seed", str(args.seed),
                "--precision", "auto", *shlex.split(args.masked_options)]
    cmd += extra
    say(" ".join(shlex.quote(c) for c in cmd))
    return Run(cmd, args.runs / f"{args.name}-paired.log")


def starter(args: argparse.Namespace) -> Callable[[list[str], bool], dict[str, Run]]:
    """How the stage starts its runs on its path: ``start(extra, resume) -> {name: run}``."""
    if args.path == "two-runs":
        return lambda extra, resume: {p: start(args, p, extra, resume) for p in PRESETS}
    step = paired_options(run_probe(args), args.batch)  # given again on --resume: not saved in the run
    return lambda extra, resume: {"paired": start_paired(args, extra, resume, step)}


def stage(args: argparse.Namespace) -> int:
    """The probe, the plan and the planned runs (:func:`main` packs whatever they leave)."""
    launch = starter(args)
    provisional = ["--iterations", "1000000", "--val-every", "1000000", "--checkpoint-every", "1000000"]
    runs = launch(provisional, False)
    started = time.monotonic()
    # At least --probe seconds, longer (up to twice that) until both logs hold three rows.
    while all(run.running() for run in runs.values()):
        elapsed = time.monotonic() - started
        short = any(len(log_rows(args, k)) < 3 for k in PRESETS)
        if elapsed > 2 * args.probe or (elapsed > args.probe and not short):
            break
        time.sleep(1)
    failed = [k for k, run in runs.items() if not run.running()]
    rates = {k: seconds_per_iteration(log_rows(args, k)) for k in PRESETS}
    say(f"probe: seconds per iteration {rates}")
    wait_all(runs, 0)  # stops both now
    if failed or None in rates.values():
        say(f"a run failed or logged too little in the probe ({failed or rates}): see the logs")
        return 1
    done = min(log_rows(args, k)[-1][0] for k in PRESETS)
    slowest = max(rate for rate in rates.values() if rate is not None)
    left = args.end - (time.monotonic() - T0) - args.restart
    total, every = plan(done, slowest, left, args.validations)
    say(f"stage length {total} iterations (at {slowest * 1000:.1f} ms each), validation every {every}")
    final = ["--iterations", str(total), "--val-every", str(every), "--checkpoint-every", str(every)]
    runs = launch(final, True)
    wait_all(runs, args.hard_stop)
    return 0 if all(run.process.returncode == 0 for run in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
