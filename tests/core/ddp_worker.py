"""Run by tests/core/test_train.py under torchrun: train a few DDP iterations, save this replica."""

import sys
from pathlib import Path

import torch

from model_core.train.config import TrainConfig
from model_core.train.run import RunPaths, fit

if __name__ == "__main__":
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = TrainConfig.preset_config("masked", model_size="tiny", patch=16, batch=2, iterations=3,
                                    checkpoint_every=100, val_every=0, workers=0, precision="fp32")
    state = fit(cfg, RunPaths(out, data, None), device_name="cpu", progress=False)
    rank = torch.distributed.get_rank()
    torch.save(state.model.state_dict(), out / f"replica{rank}.pt")
    torch.distributed.destroy_process_group()
