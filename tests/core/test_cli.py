"""Tests of the ``mdn`` command line (model_core.cli) and weights lookup (model_core.weights)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from model_core import cli
from model_core.imageio import read_image, write_image
from model_core.metrics import psnr, ssim
from model_core.network import MaskedSwinIR, SwinIRConfig, build_model
from model_core.network.checkpoint import save_weights
from model_core.weights import WEIGHTS_ENV, resolve_weights, shipped_models, weights_dir
from tests.conftest import ClosedPipe

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO.parent / "shared" / "reference" / "parity_fixture.safetensors"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    return save_weights(MaskedSwinIR(SwinIRConfig.tiny()), folder / "tiny.safetensors",
                        card={"name": "tiny test model"})


def picture(h: int = 20, w: int = 26, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# --------------------------------------------------------------------------- the program


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    listed = capsys.readouterr().out
    for command in ("denoise", "noise", "metrics", "info", "train", "eval"):
        assert command in listed
        if command not in ("train", "eval"):
            assert cli.main([command, "--help"]) == 0
            assert "usage: mdn " + command in capsys.readouterr().out


def test_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["denoise"]) == 2
    assert "required" in one_line(capsys.readouterr().err)
    assert cli.main(["nonsense"]) == 2
    assert "invalid choice" in one_line(capsys.readouterr().err)


def test_module_entry_point_runs_in_a_subprocess(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "model_core.cli", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "denoise" in done.stdout
    missing = subprocess.run([sys.executable, "-m", "model_core.cli", "metrics", "a.png", "b.png"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert missing.returncode == 1 and "a.png" in one_line(missing.stderr)


def test_register_and_delegate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "_EXTRA_COMMANDS", [])
    received = []
    fake = types.ModuleType("fake_mdn_plugin")
    fake.main = lambda argv: received.append(argv) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_mdn_plugin", fake)
    cli.register(cli.delegate("plugin", "fake_mdn_plugin", "a delegated command"))
    cli.register(cli.Command("hello", "says hello", lambda p: p.add_argument("--name"),
                             lambda args: print(f"hello {args.name}") or 0))
    assert cli.main(["plugin", "--anything", "x"]) == 7 and received == [["--anything", "x"]]
    assert cli.main(["hello", "--name", "mdn"]) == 0 and "hello mdn" in capsys.readouterr().out
    with pytest.raises(ValueError, match="exists already"):
        cli.register(cli.delegate("denoise", "fake_mdn_plugin", "clash"))
    cli.register(cli.delegate("ghost", "no_such_mdn_module", "missing"))
    assert cli.main(["ghost"]) == 1 and "not available" in one_line(capsys.readouterr().err)
    with pytest.raises(ValueError):
        cli.Command("broken", "neither run nor module")


# --------------------------------------------------------------------------- mdn denoise


def test_denoise_writes_outputs_and_keeps_alpha_and_depth(tmp_path: Path, tiny_weights: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    alpha = np.linspace(0, 1, 20 * 26, dtype=np.float32).reshape(20, 26)
    write_image(tmp_path / "rgba.png", picture(), alpha=alpha)
    write_image(tmp_path / "deep.png", picture(seed=1), bit_depth=16)
    out = tmp_path / "out"
    code = cli.main(["denoise", str(tmp_path / "rgba.png"), str(tmp_path / "deep.png"), "-o", str(out),
                     "--weights", str(tiny_weights), "--passes", "2", "--save-std", "--tile", "16",
                     "--overlap", "4", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    rgba, deep = read_image(out / "rgba_denoised.png"), read_image(out / "deep_denoised.png")
    assert rgba.rgb.shape == (20, 26, 3) and rgba.bit_depth == 8
    np.testing.assert_allclose(rgba.alpha, alpha, atol=1 / 255)
    assert deep.bit_depth == 16 and deep.alpha is None
    assert read_image(out / "deep_std.png").bit_depth == 16
    assert str(out / "rgba_denoised.png") in capsys.readouterr().out


def test_denoise_skips_a_corrupt_file(tmp_path: Path, tiny_weights: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.png").write_bytes(b"this is not a png")
    write_image(tmp_path / "good.png", picture())
    out = tmp_path / "out"
    code = cli.main(["denoise", str(tmp_path / "bad.png"), str(tmp_path / "good.png"), "-o", str(out),
                     "--weights", str(tiny_weights), "--device", "cpu"])
    assert code == 1
    assert "bad.png" in one_line(capsys.readouterr().err)
    assert (out / "good_denoised.png").is_file() and not (out / "bad_denoised.png").exists()


def test_denoise_stops_once_when_the_model_gives_non_finite_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    model = MaskedSwinIR(SwinIRConfig.tiny())
    with torch.no_grad():
        model.conv_first.weight.fill_(3e38)  # finite, so loadable; the network overflows to NaN
    weights = save_weights(model, tmp_path / "overflow.safetensors")
    for name in ("a.png", "b.png"):
        write_image(tmp_path / name, picture())
    out = tmp_path / "out"
    code = cli.main(["denoise", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out),
                     "--weights", str(weights), "--device", "cpu"])
    assert code == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("mdn denoise: error: ") and "overflow.safetensors" in err
    assert "NaN" in err and "the model" in err and "skipping" not in err
    assert list(out.iterdir()) == []


def test_denoise_refuses_to_overwrite(tmp_path: Path, tiny_weights: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "a.png", picture())
    args = ["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path), "--weights", str(tiny_weights),
            "--device", "cpu", "--bit-depth", "16"]
    assert cli.main(args) == 0
    before = (tmp_path / "a_denoised.png").read_bytes()
    capsys.readouterr()
    assert cli.main(args) == 1
    assert "--overwrite" in one_line(capsys.readouterr().err)
    assert (tmp_path / "a_denoised.png").read_bytes() == before
    assert cli.main([*args, "--overwrite", "--seed", "3"]) == 0


@pytest.mark.parametrize(("extra", "code", "needle"), [
    (["--attn-mask", "1.5"], 2, "--attn-mask"),  # named as the user typed it
    (["--passes", "0"], 2, "--passes"),
    (["--passes", "1", "--save-std"], 2, "--save-std"),  # usage errors exit 2, like argparse's
    (["--device", "nonsense"], 2, "nonsense"),
    (["--device", "meta"], 2, "meta"),
    (["--precision", "fp64"], 2, "--precision"),
    (["--tile", "16", "--overlap", "16"], 2, "--overlap"),
])
def test_denoise_bad_options(tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str],
                             extra: list[str], code: int, needle: str) -> None:
    write_image(tmp_path / "a.png", picture())
    status = cli.main(["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                       "--weights", str(tiny_weights), *extra])
    assert status == code and needle in one_line(capsys.readouterr().err)


def test_denoise_bad_weights_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "a.png", picture())
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 64)
    for weights in (str(broken), str(tmp_path / "missing.pth")):
        code = cli.main(["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                         "--weights", weights])
        assert code == 1 and Path(weights).name in one_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_denoise_parity_with_official_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not FIXTURE.is_file():
        pytest.skip(f"parity fixture not found at {FIXTURE}")
    from safetensors.torch import load_file

    fixture = load_file(str(FIXTURE))
    state = {k.removeprefix("state."): v for k, v in fixture.items() if k.startswith("state.")}
    torch.save({"params": state}, tmp_path / "official.pth")
    write_image(tmp_path / "c.png", fixture["input_c"][0].permute(1, 2, 0).numpy())
    code = cli.main(["denoise", str(tmp_path / "c.png"), "-o", str(tmp_path / "out"),
                     "--weights", str(tmp_path / "official.pth"), "--attn-mask", "0", "--tile", "0",
                     "--bit-depth", "16", "--device", "cpu", "--precision", "fp32"])  # auto: bf16 here
    assert code == 0, capsys.readouterr().err
    out = read_image(tmp_path / "out" / "c_denoised.png")
    expected = fixture["output_c_nomask"][0].permute(1, 2, 0).clamp(0, 1).numpy()
    assert out.bit_depth == 16
    np.testing.assert_allclose(out.rgb, expected, rtol=0, atol=1e-4 + 0.5 / 65535)


# --------------------------------------------------------------------------- noise, metrics, info


def test_noise_then_metrics_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = picture(32, 40)
    write_image(tmp_path / "clean.png", clean)
    clean = read_image(tmp_path / "clean.png").rgb
    noisy_path = tmp_path / "noisy.png"
    assert cli.main(["noise", str(tmp_path / "clean.png"), "-o", str(noisy_path), "--type", "gaussian",
                     "--level", "25", "--seed", "1"]) == 0
    noisy = read_image(noisy_path)
    assert noisy.bit_depth == 8 and noisy.rgb.shape == clean.shape
    capsys.readouterr()
    assert cli.main(["metrics", str(tmp_path / "clean.png"), str(noisy_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["psnr"] == pytest.approx(psnr(clean, noisy.rgb))
    assert report["ssim"] == pytest.approx(ssim(clean, noisy.rgb))
    assert 15 < report["psnr"] < 25
    assert cli.main(["metrics", str(tmp_path / "clean.png"), str(noisy_path), "--y", "--border", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("PSNR ") and "SSIM " in text
    assert cli.main(["noise", str(tmp_path / "clean.png"), "-o", str(noisy_path), "--type", "poisson"]) == 1
    assert "--overwrite" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(("depth", "mode"), [(8, "L"), (16, "I;16")])
def test_denoise_grey_in_grey_out_at_its_depth(tmp_path: Path, depth: int, mode: str) -> None:
    from PIL import Image

    from model_core.engine import Engine, RunSettings
    from tests.conftest import lively_tiny_model

    weights = save_weights(lively_tiny_model(), tmp_path / "lively.safetensors")
    grey = picture(24, 30)[..., 0]
    write_image(tmp_path / "g.png", grey, bit_depth=depth)
    source = read_image(tmp_path / "g.png").rgb
    assert cli.main(["denoise", str(tmp_path / "g.png"), "-o", str(tmp_path / "out"), "--weights",
                     str(weights), "--device", "cpu", "--passes", "2", "--save-std"]) == 0
    rgb = Engine.from_file(weights, device="cpu").denoise(
        source, RunSettings(attn_mask_ratio=0.75, passes=2)).image  # the defaults of mdn denoise
    assert np.ptp(rgb, axis=2).max() > 1 / 255  # the network alone tints a grey image
    written = tmp_path / "out" / "g_denoised.png"
    with Image.open(written) as im:
        assert im.mode == mode
    result = read_image(written)
    assert result.bit_depth == depth and result.grey
    np.testing.assert_allclose(result.rgb[..., 0], rgb.mean(axis=2), atol=0.6 / (2**depth - 1))
    with Image.open(tmp_path / "out" / "g_std.png") as im:
        assert im.mode == "I;16"


@pytest.mark.parametrize(("options", "mode"), [([], "L"), (["--no-quantize"], "I;16")])
def test_noise_on_a_grey_image_writes_grey(tmp_path: Path, options: list[str], mode: str) -> None:
    from PIL import Image

    write_image(tmp_path / "g.png", picture()[..., 0], bit_depth=16)
    assert cli.main(["noise", str(tmp_path / "g.png"), "-o", str(tmp_path / "n.png"), "--type",
                     "speckle", *options]) == 0
    with Image.open(tmp_path / "n.png") as im:
        assert im.mode == mode


def test_noise_without_quantisation_writes_16_bit(tmp_path: Path) -> None:
    write_image(tmp_path / "clean.png", picture())
    assert cli.main(["noise", str(tmp_path / "clean.png"), "-o", str(tmp_path / "n.png"), "--type",
                     "speckle", "--level", "0.02", "--no-quantize"]) == 0
    assert read_image(tmp_path / "n.png").bit_depth == 16


def test_noise_output_must_be_a_file_that_holds_the_depth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_image(tmp_path / "clean.png", picture())
    base = ["noise", str(tmp_path / "clean.png"), "--type", "gaussian", "-o"]
    assert cli.main([*base, str(tmp_path), "--overwrite"]) == 1
    assert "is a folder" in one_line(capsys.readouterr().err)
    assert cli.main([*base, str(tmp_path / "n.jpg"), "--no-quantize"]) == 2
    assert "PNG and TIFF" in one_line(capsys.readouterr().err) and not (tmp_path / "n.jpg").exists()


def test_metrics_identical_and_mismatched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "a.png", picture())
    write_image(tmp_path / "b.png", picture(22, 26))
    assert cli.main(["metrics", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["psnr"] is None
    assert cli.main(["metrics", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 1
    assert "differ in size" in one_line(capsys.readouterr().err)


def test_info(tiny_weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", str(tiny_weights)]) == 0
    text = capsys.readouterr().out
    assert "embed_dim: 12" in text and "tiny test model" in text and "format: mdn" in text
    assert cli.main(["info", str(tiny_weights), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"] == SwinIRConfig.tiny().to_dict() and info["parameters"] > 0


def test_info_says_how_far_a_model_was_trained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = {"iterations": 500, "patches_seen": 4000, "total_iterations": 1500,
            "total_patches_seen": 288_000, "train_config": {"model_size": "tiny"}}
    path = save_weights(build_model(SwinIRConfig.tiny()), tmp_path / "w.safetensors", card)
    assert cli.main(["info", str(path)]) == 0
    # Every stage counts: 288k patches are 1 % of the paper's 450k x 64.
    out = capsys.readouterr().out
    assert "training: tiny size, trained 1,500 iterations (1 % of the paper's training)\n" in out
    card["train_config"]["recipe"] = "cpu"
    path = save_weights(build_model(SwinIRConfig.tiny()), tmp_path / "cpu.safetensors", card)
    assert cli.main(["info", str(path)]) == 0
    assert ("(1 % of the paper's training); last stage with mdn's cpu recipe, not the paper's"
            in capsys.readouterr().out)


# --------------------------------------------------------------------------- weights lookup


def test_weights_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_weights: Path) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert weights_dir() == REPO / "resources" / "weights"
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    assert weights_dir() == tmp_path and shipped_models() == {}
    with pytest.raises(FileNotFoundError, match=r"masked\.safetensors is missing"):
        resolve_weights("masked")
    (tmp_path / "masked.safetensors").write_bytes(tiny_weights.read_bytes())
    assert resolve_weights("masked") == tmp_path / "masked.safetensors"
    assert shipped_models() == {"masked": tmp_path / "masked.safetensors"}
    assert resolve_weights(tiny_weights) == tiny_weights
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        resolve_weights(tmp_path / "nope.pth")
    with pytest.raises(TypeError):
        resolve_weights(3)  # type: ignore[arg-type]


def test_missing_shipped_model_via_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    assert cli.main(["info", "baseline"]) == 1
    assert "baseline.safetensors is missing" in one_line(capsys.readouterr().err)


def test_attention_mask_defaults_to_the_models_training_value():
    from model_core.weights import training_attn_mask_ratio

    assert training_attn_mask_ratio({"train_config": {"attn_mask_ratio": 0.0}}) == 0.0
    assert training_attn_mask_ratio({"train_config": {"attn_mask_ratio": 0.5}}) == 0.5
    assert training_attn_mask_ratio({}) == 0.75


# --------------------------------------------------------------------------- messages of every command


def test_errors_name_the_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["metrics", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 1
    assert one_line(capsys.readouterr().err).startswith("mdn metrics: error: ")
    assert cli.main(["info", str(tmp_path / "none.safetensors")]) == 1
    assert one_line(capsys.readouterr().err).startswith("mdn info: error: ")


def test_warnings_are_one_line_each_and_name_the_subcommand(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(args: object) -> int:
        for _ in range(2):
            warnings.warn("careful", RuntimeWarning, stacklevel=1)
        warnings.warn("careful", RuntimeWarning, stacklevel=1)  # another line, the same message
        logging.getLogger("model_core.fake").warning("a model card was ignored")
        return 0

    monkeypatch.setattr(cli, "_EXTRA_COMMANDS", [])
    cli.register(cli.Command("warner", "warns", lambda p: None, run))
    assert cli.main(["warner"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "mdn warner: warning: careful", "mdn warner: warning: a model card was ignored"]


def test_denoise_default_overlap_fits_a_small_tile(tmp_path: Path, tiny_weights: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "a.png", picture())
    assert cli.main(["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--weights",
                     str(tiny_weights), "--tile", "16", "--device", "cpu"]) == 0, capsys.readouterr().err


class Terminal(io.StringIO):
    """A stderr that says it is a terminal (tqdm draws bars only on one)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_denoise_progress_bars_on_a_terminal_only(tmp_path: Path, tiny_weights: Path, quiet: bool,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: a 40 MP denoise ran 9 minutes without a sign of life."""
    for name in ("a", "b"):
        write_image(tmp_path / f"{name}.png", picture(40, 52))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ["denoise", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "out"),
            "--weights", str(tiny_weights), "--tile", "16", "--device", "cpu"]
    assert cli.main(argv + (["--no-progress"] if quiet else [])) == 0
    drawn = terminal.getvalue()
    if quiet:
        assert drawn == ""
    else:  # the images, and the tiles of the one under way with an ETA ([elapsed<remaining])
        assert "2/2" in drawn and "image" in drawn and "tiles:" in drawn and "tile 12/12" in drawn
        assert "<" in drawn
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "out" / f"{n}_denoised.png")
                                                    for n in ("a", "b")]
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal: quiet without being told
    assert cli.main(argv + ["--overwrite"]) == 0 and sys.stderr.getvalue() == ""


def test_denoise_defaults_are_auto_tile_and_auto_precision() -> None:
    args = cli.build_parser().parse_args(["denoise", "a.png", "-o", "out"])
    assert args.tile == 0 and args.precision == "auto" and not args.no_progress


def test_denoise_unwritable_output_folder_fails_before_any_work(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_image(tmp_path / "a.png", picture())
    (tmp_path / "file").write_bytes(b"")
    code = cli.main(["denoise", str(tmp_path / "a.png"), "-o", str(tmp_path / "file" / "out"),
                     "--weights", str(tiny_weights), "--device", "cpu"])
    err = one_line(capsys.readouterr().err)
    assert code == 1 and "mdn denoise: error: cannot write to " in err and "[Errno" not in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_denoise_folder_where_no_file_can_be_created(
    tmp_path: Path, tiny_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_image(tmp_path / "a.png", picture())
    code = cli.main(["denoise", str(tmp_path / "a.png"), "-o", "/proc/self", "--weights",
                     str(tiny_weights), "--device", "cpu"])
    err = one_line(capsys.readouterr().err)
    assert code == 1 and "error: cannot write to /proc/self" in err and "skipping" not in err


def test_noise_level_out_of_range_is_a_usage_error(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "clean.png", picture())
    for level in ("-5", "nan"):
        assert cli.main(["noise", str(tmp_path / "clean.png"), "-o", str(tmp_path / "n.png"),
                         "--type", "gaussian", "--level", level]) == 2
        err = one_line(capsys.readouterr().err)
        assert err.startswith("mdn noise: error: argument --level: ") and "--help" in err
    assert not (tmp_path / "n.png").exists()


def test_a_folder_is_neither_an_image_nor_weights(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.png").mkdir()
    assert cli.main(["metrics", str(tmp_path / "d.png"), str(tmp_path / "d.png")]) == 1
    err = one_line(capsys.readouterr().err)
    assert "is a folder" in err and "[Errno" not in err
    assert cli.main(["info", str(tmp_path)]) == 1
    assert "is a folder" in one_line(capsys.readouterr().err)


def test_help_texts_agree_between_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from model_core.eval.cli import build_parser as eval_parser

    def option_help(parser: object, flag: str) -> str:
        (action,) = [a for a in parser._actions if flag in a.option_strings]  # type: ignore[attr-defined]
        return " ".join(action.help.split())

    denoise = cli.build_parser()._subparsers._group_actions[0].choices["denoise"]  # type: ignore[union-attr]
    assert option_help(denoise, "--device") == option_help(eval_parser(), "--device")
    assert "(default 0)" in option_help(denoise, "--seed")
    assert "bf16 on CUDA)" not in option_help(denoise, "--precision")  # auto also picks CPU bf16


@pytest.mark.skipif(sys.platform != "linux", reason="needs file names that are not UTF-8")
def test_file_names_that_are_not_utf8(tmp_path: Path, tiny_weights: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "caf\udce9.png"  # the Latin-1 byte 0xE9 in a UTF-8 system
    write_image(odd, picture())
    code = cli.main(["denoise", str(odd), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights),
                     "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err  # written *and* reported, not "skipping" after the write
    assert (tmp_path / "out" / "caf\udce9_denoised.png").is_file() and "_denoised.png" in captured.out
    assert cli.main(["noise", str(odd), "-o", str(tmp_path / "n\udce9.png"), "--type", "gaussian"]) == 0
    assert "n\\udce9.png" in capsys.readouterr().out


def test_noise_help_gives_every_types_level(capsys: pytest.CaptureFixture[str]) -> None:
    from model_core.noise import NOISE_TYPES

    assert cli.main(["noise", "--help"]) == 0
    text = capsys.readouterr().out
    for kind in NOISE_TYPES.values():
        assert f"{kind.name}: {kind.level_meaning}" in " ".join(text.split())
    assert "jpeg: integer JPEG quality, 1 to 100 (default 30)" in text


def test_noise_type_takes_the_spellings_eval_takes(tmp_path: Path) -> None:
    write_image(tmp_path / "clean.png", picture(16, 16))
    for spelling in ("salt_pepper", "Salt-Pepper"):
        out = tmp_path / f"{spelling}.png"
        assert cli.main(["noise", str(tmp_path / "clean.png"), "-o", str(out), "--type", spelling,
                         "--level", "0.2"]) == 0
        assert (read_image(out).rgb != read_image(tmp_path / "clean.png").rgb).any()
    # TYPE:LEVEL is mdn eval's form: here the level would be dropped silently, so it is refused.
    assert cli.main(["noise", str(tmp_path / "clean.png"), "-o", str(tmp_path / "g.png"), "--type",
                     "gaussian:50"]) == 2
    assert not (tmp_path / "g.png").exists()


def test_a_closed_pipe_ends_quietly(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["info", str(tiny_weights)]) == 1
    assert capsys.readouterr().err == ""
