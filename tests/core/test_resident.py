"""The device-resident training set: crops, flips/rotations, noise and masks drawn from (seed,
iteration) on the device, equal to the CPU path's semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core.train.config import TrainConfig
from model_core.train.data import augment
from model_core.train.loop import make_inputs, step_generator
from model_core.train.resident import BatchMaker, dihedral_tables, load_resident, masked_input

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_cfg(**changes) -> TrainConfig:
    base = dict(model_size="tiny", patch=16, batch=6, iterations=20, workers=0, precision="fp32", seed=3)
    return TrainConfig.preset_config("masked", **{**base, **changes})


def test_the_training_set_is_packed_once_and_unusable_images_are_skipped(data_dir, caplog):
    (data_dir / "broken.png").write_bytes(b"not an image")
    images = load_resident(data_dir, 16, CPU)
    assert images.count == 3 and "broken.png" not in images.names
    assert images.pixels.dtype == torch.uint8 and images.pixels.numel() == 3 * 40 * 52 * 3
    assert images.sizes.tolist() == [[40, 52]] * 3 and images.offsets.tolist() == [0, 6240, 12480]
    assert "skipping training image" in caplog.text
    with pytest.raises(ValueError, match="no usable training image"):
        load_resident(data_dir, 64, CPU)


def test_the_eight_dihedral_modes_are_the_cpu_paths():
    rows, cols = dihedral_tables(5, CPU)
    patch = np.random.default_rng(0).integers(0, 255, (5, 5, 3))
    for mode in range(8):
        assert np.array_equal(patch[rows[mode].numpy(), cols[mode].numpy()], augment(patch, mode)), mode


def test_crops_are_the_drawn_images_positions_and_modes(data_dir):
    import cv2

    cfg = tiny_cfg()
    maker = BatchMaker(load_resident(data_dir, cfg.patch, CPU), cfg)
    clean = maker.crops(torch.Generator().manual_seed(5), cfg.batch)
    gen = torch.Generator().manual_seed(5)  # the same draws, by hand
    index = torch.randint(3, (cfg.batch,), generator=gen)
    uy, ux = torch.rand(cfg.batch, generator=gen), torch.rand(cfg.batch, generator=gen)
    mode = torch.randint(8, (cfg.batch,), generator=gen)
    for i in range(cfg.batch):
        img = cv2.cvtColor(cv2.imread(str(data_dir / maker.images.names[index[i]])), cv2.COLOR_BGR2RGB)
        y, x = int(uy[i] * (40 - 16 + 1)), int(ux[i] * (52 - 16 + 1))
        want = augment(img[y:y + 16, x:x + 16], int(mode[i])).astype(np.float32) / 255
        assert np.array_equal(clean[i].permute(1, 2, 0).numpy(), want), i
    assert len(set(mode.tolist())) > 1 and len(set(index.tolist())) > 1  # the draws do vary


@pytest.mark.parametrize("changes", [{}, {"dense_share": 0.5, "dense_final": 0.0, "mask_ramp": 0.5}])
def test_the_input_mask_is_make_inputs_own(changes):
    cfg = tiny_cfg(**changes)
    clean = torch.rand(cfg.batch, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    for iteration in (0, 7, 19):
        want = make_inputs(clean, cfg, step_generator(cfg, iteration, 0, CPU), iteration)
        gen = step_generator(cfg, iteration, 0, CPU)
        noisy = (clean + torch.randn(clean.shape, generator=gen) * (cfg.sigma / 255)).clamp_(0, 1)
        assert torch.equal(masked_input(noisy, cfg, gen, iteration), want), iteration


def test_a_batch_is_a_function_of_seed_and_iteration_alone(data_dir):
    cfg = tiny_cfg()
    images = load_resident(data_dir, cfg.patch, CPU)
    maker = BatchMaker(images, cfg)
    for it in range(3):
        maker(it)
    late, fresh = maker(3), BatchMaker(images, cfg)(3)
    for name in ("clean", "noisy", "masked", "keep_maps"):
        assert torch.equal(getattr(late, name), getattr(fresh, name)), name
    other = maker(4)
    assert not torch.equal(other.clean, late.clean)
    reseeded = BatchMaker(images, tiny_cfg(seed=4))(3)
    assert not torch.equal(reseeded.clean, late.clean)
    # The noise is clipped, the mask fills dropped pixels, keep-maps are one per block.
    assert late.noisy.min() >= 0 and late.noisy.max() <= 1
    dropped = (late.masked == -0.1).all(dim=1).float().mean()
    assert 0.75 < float(dropped) < 0.95
    assert late.keep_maps.shape == (4, cfg.batch, 16, 16)
    assert 0.15 < float(late.keep_maps.mean()) < 0.35


def test_the_baseline_batch_has_no_masks(data_dir):
    cfg = TrainConfig.preset_config("baseline", model_size="tiny", patch=16, batch=4)
    batch = BatchMaker(load_resident(data_dir, cfg.patch, CPU), cfg)(0)
    assert batch.masked is batch.noisy and batch.keep_maps is None
