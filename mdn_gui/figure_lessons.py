"""The measured sentences and handout rows of lessons 7 and 8 (the paper's two figures). No Qt.

Lesson 7 reads the Paper figure: for each of the four unseen noises, the masked model's lead
over the baseline (masked minus baseline PSNR) at the mildest and the hardest level, where it
pulls ahead, and whether the lead grows with the level, beside the paper's own leads. Lesson 8
reads the Features: each model's distance D (:mod:`model_core.features`) and what it says about
its histograms. Every comparison is worded from the signs and sizes of the measured numbers, so
the sentences read true for whatever weights are loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_core.eval.paper import PAPER_KINDS, paper_curve

if TYPE_CHECKING:
    from mdn_gui.lessons import Measurement

# Leads within this many dB of each other count as equal (the paper's readings are about
# +/-0.3 dB): a lead "grows" only when the hardest level's exceeds the mildest's by this much.
TIE_DB = 0.3
# How the feature histograms of a model read, by its distance D (in reference stds).
COINCIDE_D, APART_D = 0.05, 0.2
# Two models' distances within this ratio of each other count as equal.
SAME_D_RATIO = 1.25


def _series(points: dict[str, dict], word: str) -> dict[str, list[tuple[float, float, float]]]:
    name = next((n for n in points if word in n), None)
    return {} if name is None else points[name]


def kind_leads(m: Measurement) -> dict[str, list[tuple[float, float]]]:
    """Noise type -> [(level, masked - baseline PSNR)] for the levels both models have."""
    masked, base = _series(m.paper, "masked"), _series(m.paper, "baseline")
    leads = {}
    for kind in PAPER_KINDS:
        ours = {level: p for level, p, _ in masked.get(kind, [])}
        theirs = {level: p for level, p, _ in base.get(kind, [])}
        common = sorted(set(ours) & set(theirs))
        if common:
            leads[kind] = [(x, round(round(ours[x], 2) - round(theirs[x], 2), 2)) for x in common]
    return leads


def _ahead_from(leads: list[tuple[float, float]]) -> float | None:
    """The first level from which the masked model leads by TIE_DB or more at every harder one."""
    start = None
    for level, lead in leads:
        if lead >= TIE_DB:
            start = level if start is None else start
        else:
            start = None
    return start


def _kind_clause(kind: str, leads: list[tuple[float, float]]) -> str:
    (lo, first), (hi, last) = leads[0], leads[-1]
    text = f"{kind} {first:+.2f} dB at {lo:g}, {last:+.2f} dB at {hi:g}"
    ahead = _ahead_from(leads)
    if ahead is not None and ahead != lo:
        text += f" (ahead from {ahead:g})"
    paper = {p.level: p.lead for p in paper_curve(kind)}
    if lo in paper and hi in paper:
        text += f"; the paper {paper[lo]:+.2f} and {paper[hi]:+.2f}"
    return text


def paper_sentence(m: Measurement) -> str:
    """What the loaded weights show in the Paper figure."""
    leads = kind_leads(m)
    if not leads:
        return "Not measured here: the Paper figure needs both the masked and the baseline model."
    where = f" ({m.paper_pixels:,} pixels a point, {m.paper_source})" if m.paper_pixels else ""
    text = "Here, masked minus baseline" + where + ": " + "; ".join(
        _kind_clause(kind, values) for kind, values in leads.items()) + "."
    growing = [k for k, v in leads.items() if len(v) > 1 and v[-1][1] - v[0][1] >= TIE_DB]
    shrinking = [k for k, v in leads.items() if len(v) > 1 and v[0][1] - v[-1][1] >= TIE_DB]
    count = len(leads)
    if len(growing) == count:
        text += f" The lead grows with the level on all {count} noises, as in the paper."
    elif growing:
        text += (f" The lead grows with the level on {len(growing)} of the {count} noises "
                 f"({', '.join(growing)}); in the paper it grows on all four.")
    else:
        text += f" The lead does not grow with the level on any of the {count} noises, unlike the paper."
    if shrinking:
        text += f" It shrinks on {', '.join(shrinking)}."
    return text + _weights(m)


def _reads(d: float) -> str:
    if d < COINCIDE_D:
        return "its histograms nearly coincide"
    if d < APART_D:
        return "its histograms differ a little"
    return "its histograms differ clearly"


def features_sentence(m: Measurement) -> str:
    """What the loaded weights show in the Features."""
    if not m.features:
        return "Not measured here: the Features did not run (no network loaded)."
    where = f" ({m.features_pixels:,} pixels of this image)" if m.features_pixels else ""
    parts = [f"{label} D = {d:.3f}: {_reads(d)}" for label, d in m.features.items()]
    text = "Here" + where + ": " + "; ".join(parts) + "."
    masked = next((d for n, d in m.features.items() if "masked" in n), None)
    base = next((d for n, d in m.features.items() if "baseline" in n), None)
    if masked is None or base is None:
        return text + _weights(m)
    if max(masked, base) <= SAME_D_RATIO * min(masked, base):
        text += " The two models' features move about equally with the noise, unlike the paper's."
    elif masked < base:
        text += (f" As in the paper, the masked model's features move less with the noise: "
                 f"{base / max(masked, 1e-12):.1f} times less than the baseline's.")
    else:
        text += (f" Unlike the paper, the masked model's features move more with the noise than "
                 f"the baseline's ({masked / max(base, 1e-12):.1f} times).")
    return text + _weights(m)


def _weights(m: Measurement) -> str:
    notes = [f"{choice}: {line}" for choice, line in m.weights.items() if line]
    return f" (Loaded weights, {'; '.join(notes)}.)" if notes else ""


def figure_rows(m: Measurement) -> list[tuple[str, str]]:
    """The handout rows of the two figures' numbers (none when neither was measured)."""
    rows = []
    for kind, leads in kind_leads(m).items():
        rows.append((f"masked - baseline, {kind} (centre crops)",
                     ", ".join(f"{x:g}: {lead:+.2f} dB" for x, lead in leads)))
    if m.paper_pixels:
        rows.append(("Paper figure measured on", f"{m.paper_pixels:,} pixels a point, {m.paper_source}"))
    for label, d in m.features.items():
        rows.append((f"feature distance D, {label}", f"{d:.4f}"))
    if m.features_pixels:
        rows.append(("Features measured on", f"{m.features_pixels:,} pixels of this image"))
    return rows
