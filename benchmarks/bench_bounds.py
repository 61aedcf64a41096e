"""How fast could a fused window-attention kernel make the forward pass? (not a test)

Issue 11's last candidate is a hand-written kernel for the attention core of each window (logits,
position bias, shift masks, softmax, and the product with v). This benchmark bounds what any such
kernel could give before anyone writes one: it times the engine's default path on a random image
as it is, and with the attention core replaced by a stand-in that costs nothing (v passed straight
to the output projection; the qkv and output projections, the MLPs, the LayerNorms, the gathers
and the convolutions all still run). The second time is the floor under an infinitely fast kernel.
Random weights: speed does not depend on them. Prints one JSON line per network; the figures in
``benchmarks/inference_notes.md`` ("A fused attention kernel: the bound") come from it::

    python -m benchmarks.bench_bounds --sizes lite paper --side 512

Pause anything else that runs: the figures are only worth comparing on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_onnx import median_seconds  # noqa: E402
from model_core.device import cpu_name  # noqa: E402
from model_core.engine import Engine, RunSettings  # noqa: E402
from model_core.network import SwinIRConfig, build_model  # noqa: E402
from model_core.network.attention import WindowAttention, WindowBorder  # noqa: E402

SIZES = {"lite": SwinIRConfig.lite, "paper": SwinIRConfig.paper}


def _without_core(self: WindowAttention, q_t: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor,
                  rows: int, border: WindowBorder | None) -> torch.Tensor:
    """:meth:`WindowAttention.attend_transposed` at no cost: each token's own v, unmixed."""
    return v_t


@contextlib.contextmanager
def attention_core_free() -> Iterator[None]:
    """Within the block, every :class:`WindowAttention` runs without its attention core."""
    original = WindowAttention.attend_transposed
    WindowAttention.attend_transposed = _without_core  # type: ignore[method-assign]
    try:
        yield
    finally:
        WindowAttention.attend_transposed = original  # type: ignore[method-assign]


def measure(size: str, side: int, repeats: int) -> dict[str, object]:
    """Median seconds of the engine's default path on a random ``side`` x ``side`` image, as it is
    and without the attention core, for the network ``size`` (``lite`` or ``paper``)."""
    cfg = SIZES[size]()
    torch.manual_seed(0)
    engine = Engine(build_model(cfg), device="cpu")
    image = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    settings = RunSettings(attn_mask_ratio=0.75, seed=0)

    def as_is() -> None:
        engine.denoise(image, settings)

    def core_free() -> None:
        with attention_core_free():
            engine.denoise(image, settings)

    times = median_seconds({"as_is": as_is, "core_free": core_free}, repeats)
    return {"network": size, "side": side, "threads": torch.get_num_threads(), "cpu": cpu_name(),
            "seconds": {name: round(t, 3) for name, t in times.items()},
            "core_share": round(1 - times["core_free"] / times["as_is"], 3)}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per network."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["lite", "paper"], choices=list(SIZES))
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    for size in args.sizes:
        print(json.dumps(measure(size, args.side, args.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
