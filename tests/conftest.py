"""Shared fixtures: where the reference material beside the project lives."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURE = SHARED / "reference" / "parity_fixture.safetensors"


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """A folder of three small blurred-noise training images (40x52 PNG)."""
    import cv2
    import numpy as np

    folder = tmp_path / "clean"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        img = cv2.GaussianBlur(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8), (5, 5), 2)
        cv2.imwrite(str(folder / f"img{i}.png"), img)
    return folder


@pytest.fixture(scope="session")
def parity_fixture() -> dict:
    """The official-code oracle tensors (skips when ../shared is not beside the project)."""
    if not FIXTURE.is_file():
        pytest.skip(f"parity fixture not found at {FIXTURE}")
    from safetensors.torch import load_file

    return load_file(str(FIXTURE))


@pytest.fixture(scope="session")
def official_state(parity_fixture: dict) -> dict:
    """The fixture's ``state.*`` tensors under their official names."""
    return {k.removeprefix("state."): v for k, v in parity_fixture.items() if k.startswith("state.")}


def lively_tiny_model(seed: int = 0):
    """A tiny network whose attention and bias matter (the default init is nearly inert)."""
    import torch

    from model_core.network import MaskedSwinIR, SwinIRConfig

    torch.manual_seed(seed)
    model = MaskedSwinIR(SwinIRConfig.tiny())
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0, 0.25)
                module.bias.normal_(0, 0.05)
        for block in model.blocks:
            block.attn.relative_position_bias_table.normal_(0, 0.5)
    return model.eval()



@pytest.fixture
def one_thread():
    """Tiny models on one thread: as fast, and far faster when other work shares the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class ClosedPipe:
    """A stdout whose reader has gone away (``mdn info x | head -1``)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise OSError("no file descriptor")
