"""Publish a training run's EMA weights as a shipped model with a complete model card.

``python -m model_core.train.publish runs/masked --name masked --to resources/weights``
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from model_core.argparsing import OneLineParser, run_reported
from model_core.network.checkpoint import load_weights, save_weights

MAX_BYTES = 20 * 1024 * 1024


def validation_table(log_path: Path) -> list[dict[str, Any]]:
    """The validation rows of a run's ``log.csv``: iteration, elapsed seconds and the PSNR of
    every validation noise (``poisson2.5_psnr``, ...; ``unseen_psnr`` is their mean over the
    unseen noises). Logs of earlier mdn versions, with Poisson 2.5 as the only unseen noise
    (``val_unseen_psnr``), give ``gaussian15_psnr`` and ``poisson2.5_psnr``."""
    if not log_path.is_file():
        return []
    with log_path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("val_unseen_psnr")]
    table = []
    for r in rows:
        entry: dict[str, Any] = {"iteration": int(r["iteration"]), "elapsed_s": float(r["elapsed_s"])}
        if "val_poisson2.5_psnr" not in r:  # an earlier log: its one unseen noise was Poisson 2.5
            r = {**r, "val_poisson2.5_psnr": r["val_unseen_psnr"]}
            r.pop("val_unseen_psnr")
        entry.update({k[4:]: float(v) for k, v in r.items() if k.startswith("val_") and v})
        table.append(entry)
    return table


def publish(run_dir: Path, name: str, dest: Path, extra: dict[str, Any] | None = None,
            *, overwrite: bool = False) -> Path:
    """Copy ``run_dir/model.safetensors`` to ``dest/name.safetensors`` with an enriched card.

    Args:
        run_dir: A ``mdn train`` output folder.
        name: Shipped model name (``masked`` or ``baseline``).
        dest: Folder of shipped weights.
        extra: More card fields (evaluation tables, notes).
        overwrite: Replace an existing shipped model.

    Both files are written to a temporary folder in ``dest`` and checked there first, so a
    failed publish leaves the shipped model as it was.

    Returns:
        The written safetensors path.

    Raises:
        FileExistsError: The model exists and ``overwrite`` is False.
        ValueError: The weights file would be over :data:`MAX_BYTES`.
    """
    loaded = load_weights(run_dir / "model.safetensors")
    card = {**loaded.card, "name": name, "validation": validation_table(run_dir / "log.csv"),
            **(extra or {})}
    out = dest / f"{name}.safetensors"
    targets = (out, out.with_suffix(".json"))
    if not overwrite:
        for target in targets:
            if target.exists():
                raise FileExistsError(f"{target} exists (use --overwrite to replace it)")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".publish-") as tmp:
        staged = save_weights(loaded.model, Path(tmp) / out.name, card)
        if staged.stat().st_size > MAX_BYTES:
            raise ValueError(f"{out.name} would be {staged.stat().st_size / 2**20:.1f} MB, over the "
                             f"{MAX_BYTES / 2**20:.0f} MB limit of shipped weights")
        for target in targets:
            os.replace(Path(tmp) / target.name, target)
    return out


def _read_extra(path: Path) -> dict[str, Any]:
    """The JSON object of ``--extra``."""
    try:
        extra = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(extra, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    return extra


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = OneLineParser(prog="python -m model_core.train.publish",
                           description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="an `mdn train` output folder")
    parser.add_argument("--name", required=True, help="shipped model name, e.g. masked or baseline")
    parser.add_argument("--to", type=Path, required=True, dest="dest",
                        help="folder of shipped weights, e.g. resources/weights")
    parser.add_argument("--extra", type=Path, help="JSON file of more card fields")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing shipped model")

    def body() -> int:
        args = parser.parse_args(argv)
        if not args.name or Path(args.name).name != args.name or args.name.startswith("."):
            raise ValueError(f"--name {args.name!r} must be a plain file name")
        extra = _read_extra(args.extra) if args.extra else None
        print(publish(args.run_dir, args.name, args.dest, extra, overwrite=args.overwrite))
        return 0
    return run_reported("publish", body)


if __name__ == "__main__":
    raise SystemExit(main())
