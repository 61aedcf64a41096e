"""The guided tour of masked training, as data, and the sentences that report live numbers. No Qt.

Each :class:`Lesson` says how the whole workbench is set up for one step of the README's
teaching walkthrough (image, noise, models, A/B view, the panel to bring forward) and what its
text says. The text has two parts: what to look at and what the paper reports (fixed), and a
sentence about what the *loaded* weights show, written from numbers measured on screen by
:func:`live_sentence`. The fixed part never claims what the loaded weights do: shipped weights,
better ones later and the official checkpoints all read true.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mdn_gui.state import psnr_text

# Differences below this (in dB) are reported as "about the same": the paper's own readings are
# about +/-0.3 dB (../shared/reference/NOISE.md).
TIE_DB = 0.3


@dataclass(frozen=True)
class PaperReading:
    """PSNR of the paper's masked model and its unmasked baseline on one test noise (read off
    its PSNR-vs-level figure, about +/-0.3 dB)."""

    noise: str
    masked: float
    baseline: float


PAPER_READINGS = (
    PaperReading("speckle:0.024", 30.8, 28.3),
    PaperReading("poisson:2.5", 28.7, 23.8),
    PaperReading("mixture:2", 29.6, 26.1),
    PaperReading("correlated:50", 28.0, 26.4),
)
PAPER = {reading.noise: reading for reading in PAPER_READINGS}


@dataclass(frozen=True)
class Lesson:
    """One step of the tour: the state it sets up and its text.

    Attributes:
        title: Short heading.
        sample: Built-in sample image.
        noise: ``TYPE:LEVEL`` of the synthetic noise.
        seed: Seed of the noise and of the masks.
        model: The model selected in the model panel.
        runs: Models run for this step, the selected one with the settings below, any other at
            the ratio it was trained with.
        attn_ratio: Attention-mask ratio of the selected model (None: the ratio it was trained with).
        input_ratio: Input-mask ratio.
        passes: Stochastic passes.
        a, b, mode: Layers shown as A and B, and the comparison mode.
        panel: Dock brought forward (``metrics``, ``sweeps``, ``masks``).
        mask_mode: What the Masks panel shows (``keep``, ``input``, ``std``, ``attention``), or None.
        pixel: (y, x) whose attention in the first Swin block the Masks panel shows, probed once
            the runs are in (with ``mask_mode="attention"``), or None.
        sweeps: Sweeps run once the models are done (``noise``, ``attention``).
        look: What to look at (plain text).
        paper: What the paper reports, or that the step is a demonstration.
        live: Which measured sentence follows (see :func:`live_sentence`).
    """

    title: str
    noise: str
    model: str
    runs: tuple[str, ...]
    a: str
    b: str
    look: str
    paper: str
    live: str
    sample: str = "chelsea"
    seed: int = 1
    attn_ratio: float | None = None
    input_ratio: float = 0.0
    passes: int = 1
    mode: str = "split"
    panel: str = "metrics"
    mask_mode: str | None = None
    pixel: tuple[int, int] | None = None
    sweeps: tuple[str, ...] = ()


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        title="The problem",
        noise="poisson:2.5",
        model="baseline",
        runs=("baseline",),
        a="noisy",
        b="baseline",
        look="The baseline was trained on one noise only: Gaussian, sigma 15. Here it meets Poisson "
        "noise (scale 2.5), which it never saw. Drag the divider: noisy on the left, the baseline's "
        "output on the right. Look at flat areas (fur, background): how much grain is left?",
        paper="The paper: its baseline reaches only 23.8 dB on Poisson 2.5 (the masked model 28.7 dB): "
        "it learned to remove sigma-15 Gaussian noise, not what images look like.",
        live="single",
    ),
    Lesson(
        title="The fix",
        noise="poisson:2.5",
        model="masked",
        runs=("baseline", "masked"),
        a="baseline",
        b="masked",
        look="Side A is the baseline, side B the model trained with masks, on the same noisy input. "
        "Drag the divider, or press Diff (Ctrl+4) to see where each one errs.",
        paper="The paper: with masks, far less of this unseen noise survives, 28.7 dB against the "
        "baseline's 23.8 dB.",
        live="compare",
    ),
    Lesson(
        title="What the attention mask does",
        noise="poisson:2.5",
        model="masked",
        runs=("masked",),
        a="noisy",
        b="masked",
        panel="masks",
        mask_mode="attention",
        pixel=(129, 164),  # the left pupil's edge: its weights follow the edge, far from uniform
        look="The Masks panel shows side B's run: the pixel marked by a ring, the keys of its 8x8 "
        "window coloured by one head's attention weights, and the same weights as a grid, with "
        "the keys this block's random keep-map dropped crossed out. Slide through the Swin "
        "blocks (each has its own keep-map) or click another pixel; choose Attention keep-map to "
        "see a block's whole map, dropped tokens tinted red.",
        paper="The paper drops 75 % of the tokens in every self-attention layer, in training and at "
        "inference, so the network cannot lean on any single noisy pixel.",
        live="keep",
    ),
    Lesson(
        title="Why passes differ",
        noise="poisson:2.5",
        model="masked",
        runs=("masked",),
        a="noisy",
        b="masked",
        passes=8,
        panel="masks",
        mask_mode="std",
        look="Eight passes, each with other random masks, are averaged. The std map shows where the "
        "passes disagree (typically edges and texture). Only masks make passes differ: the "
        "baseline without a mask gives one result and a flat map.",
        paper="A demonstration of the method rather than a number from the paper.",
        live="std",
    ),
    Lesson(
        title="Input masking",
        noise="poisson:2.5",
        model="masked",
        runs=("masked",),
        a="noisy",
        b="masked",
        input_ratio=0.85,
        panel="masks",
        mask_mode="input",
        look="85 % of the input pixels are dropped (black in the Masks panel) before the network "
        "sees the image: it has to rebuild the picture from the 15 % that are left.",
        paper="The paper trains with 80-90 % of the input pixels dropped and tests without an input "
        "mask: rebuilding images from few pixels is the task it learns.",
        live="input",
    ),
    Lesson(
        title="Measure it",
        noise="poisson:2.5",
        model="masked",
        runs=("baseline", "masked"),
        a="baseline",
        b="masked",
        panel="sweeps",
        sweeps=("noise", "attention"),
        look="Two sweeps on a 128x128 centre crop. Top: PSNR against the attention-mask ratio, "
        "each network run with 0 % to 95 % of its tokens dropped. Bottom: PSNR against the level "
        "of this noise for the masked model, the baseline and non-local means; the dotted line "
        "marks the level in the noise panel.",
        paper="The paper (masked vs baseline): speckle 0.024: 30.8 vs 28.3 dB; Poisson 2.5: 28.7 vs "
        "23.8; mixture 2: 29.6 vs 26.1; correlated 50: 28.0 vs 26.4. It keeps the attention mask "
        "at inference because the masked model was trained with it.",
        live="sweep",
    ),
)


@dataclass
class Measurement:
    """What the app measured for a step (None where not measured).

    Attributes:
        noise: ``TYPE:LEVEL`` the numbers were measured on.
        psnr: Layer key (``noisy``, ``masked``, ``baseline``) to PSNR in dB.
        weights: Model choice to one line on its weights file and training.
        kept: Share of tokens the first Swin block kept in the shown run.
        input_kept: Share of input pixels kept.
        std_mean: Mean per-pixel std over the passes (8-bit levels).
        passes: Passes of the shown run.
        sweep: Series name to (level, PSNR) points of the noise-level sweep (on a crop).
        ratio_sweep: Series name to (attention-mask ratio in %, PSNR) points (on a crop).
        error: Why the step could not be measured.
        paper: Paper figure: series to noise type to (level, PSNR, SSIM) points (on crops).
        paper_pixels: Pixels each point of the Paper figure measured.
        paper_source: What the Paper figure measured (this image, or the sample photos).
        features: Features: model label to its distance D.
        features_pixels: Pixels the Features measured.
    """

    noise: str = ""
    psnr: dict[str, float] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)
    kept: float | None = None
    input_kept: float | None = None
    std_mean: float | None = None
    passes: int = 1
    sweep: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    ratio_sweep: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    error: str = ""
    paper: dict[str, dict[str, list[tuple[float, float, float]]]] = field(default_factory=dict)
    paper_pixels: int = 0
    paper_source: str = ""
    features: dict[str, float] = field(default_factory=dict)
    features_pixels: int = 0


def lesson_pixel(lesson: Lesson, size: tuple[int, int] | None) -> tuple[int, int] | None:
    """The step's attention pixel, kept inside an image of ``size`` (H, W) that may not be the
    lesson's own (None: the step probes no pixel)."""
    if lesson.pixel is None:
        return None
    height, width = size or (1, 1)
    return min(lesson.pixel[0], height - 1), min(lesson.pixel[1], width - 1)


def lesson_text(lesson: Lesson) -> str:
    """The fixed text of a step: what to look at, then what the paper reports."""
    return f"{lesson.look} {lesson.paper}"


def live_sentence(lesson: Lesson, m: Measurement) -> str:
    """What the loaded weights show, from the numbers measured on screen.

    The sentence states the numbers and compares them in words that follow their signs, so it
    reads true whether the loaded weights reproduce the paper or not.
    """
    if m.error:
        return f"Not measured here: {m.error}"
    from mdn_gui import figure_lessons  # lessons 7 and 8; it imports this module's types

    writer = {
        "paper": figure_lessons.paper_sentence,
        "features": figure_lessons.features_sentence,
        "single": _single,
        "compare": _compare,
        "keep": _keep,
        "std": _std,
        "input": _input,
        "sweep": _sweep,
    }[lesson.live]
    return writer(m)


def _db(value: float) -> str:
    return psnr_text(value)


def _gap(a: float, b: float) -> float:
    """``a - b`` as a reader works it out from the two figures shown (each to 0.01 dB), so that a
    sentence's "by 1.32 dB" always equals the difference of the numbers on screen."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return a - b
    return round(round(a, 2) - round(b, 2), 2)


def _versus_input(name: str, value: float, noisy: float | None) -> str:
    if noisy is None:
        return ""
    delta = _gap(value, noisy)
    if abs(delta) < TIE_DB:
        return f"; the {name} output is about level with its noisy input ({_db(noisy)})"
    side = "above" if delta > 0 else "below"
    return f"; the {name} output is {abs(delta):.2f} dB {side} its noisy input ({_db(noisy)})"


def _single(m: Measurement) -> str:
    base = m.psnr.get("baseline")
    if base is None:
        return "Not measured here: the baseline did not run (no baseline weights loaded)."
    text = f"Here, on {m.noise}: baseline {_db(base)}{_versus_input('baseline', base, m.psnr.get('noisy'))}."
    reading = PAPER.get(m.noise)
    if reading is not None:
        text += f" The paper's baseline: {reading.baseline:.1f} dB"
        delta = base - reading.baseline
        if abs(delta) >= TIE_DB:
            text += f"; this one scores {abs(delta):.2f} dB {'above' if delta > 0 else 'below'} it"
        text += "."
    return text + _weights_note(m, ("baseline",))


def _compare(m: Measurement) -> str:
    masked, base = m.psnr.get("masked"), m.psnr.get("baseline")
    if masked is None or base is None:
        missing = " and ".join(n for n in ("masked", "baseline") if m.psnr.get(n) is None)
        return f"Not measured here: the {missing} model did not run (weights not loaded)."
    noisy = m.psnr.get("noisy")
    text = f"Here, on {m.noise}: masked {_db(masked)}, baseline {_db(base)}"
    text += f" (noisy input {_db(noisy)})." if noisy is not None else "."
    reading = PAPER.get(m.noise)
    if reading is not None:
        text += f" The paper: {reading.masked:.1f} vs {reading.baseline:.1f} dB."
    delta = _gap(masked, base)
    if delta >= TIE_DB:
        text += f" As in the paper, the masked model leads here in PSNR, by {delta:.2f} dB."
    elif delta <= -TIE_DB:
        text += (
            f" Unlike the paper, the baseline leads here in PSNR, by {-delta:.2f} dB: these masked weights "
            "do not show the paper's gain."
        )
    else:
        text += f" Here the two are within {TIE_DB} dB of each other in PSNR, unlike the paper's gap."
    if noisy is not None and masked < noisy:
        text += f" The masked output scores {_gap(noisy, masked):.2f} dB below its own noisy input."
    return text + _weights_note(m, ("masked", "baseline"))


def _masked_score(m: Measurement, subject: str, name: str) -> str:
    """``; <subject> scores X dB; the <name> output is ... its noisy input``, or nothing when the
    masked model did not run."""
    masked, noisy = m.psnr.get("masked"), m.psnr.get("noisy")
    if masked is None:
        return ""
    return f"; {subject} scores {_db(masked)}{_versus_input(name, masked, noisy)}"


def _keep(m: Measurement) -> str:
    if m.kept is None:
        return "Not measured here: no masked network ran."
    text = f"Here: the first Swin block of the masked model's run kept {m.kept:.1%} of the tokens"
    return text + _masked_score(m, "it", "masked") + "." + _weights_note(m, ("masked",))


def _std(m: Measurement) -> str:
    if m.std_mean is None:
        return "Not measured here: the run had a single pass (nothing to compare)."
    text = f"Here: {m.passes} passes of the masked model differ by {m.std_mean:.2f} 8-bit levels on average"
    return text + _masked_score(m, "their mean", "mean") + "." + _weights_note(m, ("masked",))


def _input(m: Measurement) -> str:
    if m.input_kept is None:
        return "Not measured here: the run used no input mask."
    text = f"Here: {m.input_kept:.1%} of the input pixels reached the masked model"
    masked, noisy = m.psnr.get("masked"), m.psnr.get("noisy")
    if masked is not None:
        text += f", which scores {_db(masked)}"
        if noisy is not None:
            text += f" (the noisy input, with every pixel: {_db(noisy)})"
    return text + "." + _weights_note(m, ("masked",))


def _sweep(m: Measurement) -> str:
    if not m.sweep:
        return "Not measured here: the sweep did not run."
    level = float(m.noise.split(":")[1]) if ":" in m.noise else None
    at_level = {
        name: y
        for name, points in m.sweep.items()
        for x, y in points
        if level is not None and abs(x - level) < 1e-9
    }
    parts = [f"{name} {_db(y)}" for name, y in at_level.items()]
    text = f"Here, on the crop at {m.noise}: " + (", ".join(parts) if parts else "no point at this level")
    masked, base = _series(m.sweep, "masked"), _series(m.sweep, "baseline")
    if masked and base:
        common = sorted(set(masked) & set(base))
        ahead = sum(masked[x] - base[x] >= TIE_DB for x in common)
        behind = sum(base[x] - masked[x] >= TIE_DB for x in common)
        text += (
            f". Over the {len(common)} levels the masked model leads at {ahead}, trails at {behind}"
            f" and ties at {len(common) - ahead - behind}"
        )
        reading = PAPER.get(m.noise)
        if reading is not None:
            text += f"; the paper, at {m.noise}: {reading.masked:.1f} vs {reading.baseline:.1f} dB"
    return text + "." + _ratio_sweep(m) + _weights_note(m, ("masked", "baseline"))


def _ratio_sweep(m: Measurement) -> str:
    """`` Against the mask ratio: the masked model X dB with no mask, Y at 75 % ...``: each
    network's PSNR without the attention mask and at its best ratio, or nothing if not swept."""
    parts = []
    for name, points in m.ratio_sweep.items():
        by_ratio = dict(points)
        if 0.0 not in by_ratio:
            continue
        best = max(by_ratio, key=lambda ratio: by_ratio[ratio])
        part = f"the {name} scores {_db(by_ratio[0.0])} with no mask"
        if _gap(by_ratio[best], by_ratio[0.0]) > 0:  # a peak that shows in the figures
            part += f" and peaks at {best:g} % ({_db(by_ratio[best])})"
        parts.append(part)
    return f" Against the mask ratio, {'; '.join(parts)}." if parts else ""


def _series(sweep: dict[str, list[tuple[float, float]]], word: str) -> dict[float, float]:
    """Points of the sweep series whose name contains ``word`` (``masked model``), by level."""
    name = next((n for n in sweep if word in n), None)
    return {} if name is None else dict(sweep[name])


def _weights_note(m: Measurement, choices: tuple[str, ...]) -> str:
    notes = [f"{choice}: {m.weights[choice]}" for choice in choices if m.weights.get(choice)]
    return f" (Loaded weights, {'; '.join(notes)}.)" if notes else ""


# --------------------------------------------------------------------------- lessons 7 and 8

LESSONS += (
    Lesson(
        title="The further the noise, the bigger the lead",
        noise="poisson:2.5",
        model="masked",
        runs=(),
        a="noisy",
        b="clean",
        panel="paper",
        sweeps=("paper-figure",),
        look="The Paper figure: PSNR (top) and SSIM (bottom) against the level of four noises the "
        "models never saw in training (correlated, speckle, Poisson, mixture), for each loaded network "
        "and the noisy input, on a centre crop of this image. The dashed curves are the paper's "
        "readings. Look at how far apart the masked and baseline curves are at the mildest level "
        "(left end) and at the hardest (right end).",
        paper="The paper: the two curves start close at the mildest level and part as the noise moves "
        "away from the training noise; the masked model's lead grows with the level (Poisson: +2.8 dB "
        "at 2, +5.95 dB at 3.5). Our correlated and mixture noises are not the paper's generators: "
        "compare shapes there, not decibels.",
        live="paper",
    ),
    Lesson(
        title="What the network sees",
        noise="gaussian:15",
        model="masked",
        runs=(),
        a="noisy",
        b="clean",
        panel="features",
        sweeps=("features",),
        look="The Features panel: for this clean image under four noises (Gaussian 15, the training "
        "noise, drawn black; speckle 0.024, mixture 2 and Poisson 2.5, unseen), the histogram of "
        "the values of the network's deep features (the output of its last residual group), one "
        "plot per model. D is how far the unseen noises move the histogram from the black one, in "
        "units of its spread.",
        paper="The paper: without masked training the four histograms differ widely (the features "
        "follow the noise); with it they nearly coincide (the features follow the image), which is "
        "why the masked model generalizes to noises it never saw.",
        live="features",
    ),
)
