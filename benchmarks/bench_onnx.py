"""ONNX Runtime against PyTorch on mdn's network (not a test; an optional backend's evidence).

Exports the network (random weights: speed does not depend on them) with the keep-maps of a 75 %
attention mask as a second input, then times, in one process and alternated, ONNX Runtime's CPU
provider in fp32, PyTorch in fp32, PyTorch under bf16 autocast and the engine's default path on the
same image and keep-maps. Prints one JSON line per network; the figures in
``benchmarks/inference_notes.md`` ("ONNX Runtime") come from it. Needs the optional packages::

    pip install onnxruntime onnxscript
    python -m benchmarks.bench_onnx --sizes lite paper --side 512

Pause anything else that runs (the figures are only worth comparing on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_core.device import cpu_name  # noqa: E402
from model_core.engine import Engine, RunSettings  # noqa: E402
from model_core.network import MaskedSwinIR, SwinIRConfig, build_model, draw_keep_maps  # noqa: E402


class _WithKeeps(torch.nn.Module):
    """The network with its keep-maps as an ordinary input, as the exporter needs them."""

    def __init__(self, net: MaskedSwinIR) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, keeps: torch.Tensor) -> torch.Tensor:
        return self.net(x, keep_maps=keeps)


def median_seconds(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Each callable once to warm up, then ``repeats`` rounds alternating them; medians."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def measure(size: str, side: int, threads: int, repeats: int, folder: Path) -> dict[str, object]:
    """Export the ``size`` network for ``side`` x ``side`` images and time the four paths."""
    import onnxruntime as ort

    torch.manual_seed(0)
    cfg = SwinIRConfig.lite() if size == "lite" else SwinIRConfig.paper()
    engine = Engine(build_model(cfg), "cpu")
    torch.set_num_threads(threads)
    net = engine.model.requires_grad_(False)
    x = torch.rand(1, 3, side, side)
    keeps = draw_keep_maps(cfg.num_blocks, 1, side, side, 0.75, torch.Generator().manual_seed(0),
                           torch.device("cpu"))
    path = folder / f"{size}{side}.onnx"
    start = time.perf_counter()
    torch.onnx.export(_WithKeeps(net), (x, keeps), str(path), input_names=["x", "keeps"],
                      output_names=["y"], dynamo=True)
    export_s = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {"x": x.numpy(), "keeps": keeps.numpy()}
    with torch.inference_mode():
        reference = net(x, keep_maps=keeps).numpy()
    max_abs = float(np.abs(session.run(None, feeds)[0] - reference).max())
    image = x[0].permute(1, 2, 0).numpy()

    def torch_run(autocast: bool) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
                return net(x, keep_maps=keeps)
        return run

    seconds = median_seconds({
        "ort_fp32_s": lambda: session.run(None, feeds),
        "torch_fp32_s": torch_run(False),
        "torch_bf16_s": torch_run(True),
        "engine_default_s": lambda: engine.denoise(image, RunSettings()),
    }, repeats)
    return {"machine": cpu_name(), "size": size, "side": side, "threads": threads,
            "onnxruntime": ort.__version__, "torch": torch.__version__, "export_s": round(export_s, 1),
            "ort_vs_torch_fp32_max_abs": max_abs, **{name: round(t, 3) for name, t in seconds.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", nargs="+", default=["lite", "paper"], choices=["lite", "paper"])
    parser.add_argument("--side", type=int, default=512, help="image side in pixels (default 512)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        print(f"bench_onnx needs the optional packages onnxruntime and onnxscript ({exc}); "
              "pip install onnxruntime onnxscript", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            print(json.dumps(measure(size, args.side, args.threads, args.repeats, Path(folder))),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
