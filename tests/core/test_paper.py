"""The paper's readings as data equal the table of ../shared/reference/NOISE.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model_core.eval.paper import PAPER_KINDS, PAPER_POINTS, paper_curve, paper_grid, paper_point
from model_core.noise import NoiseSpec

NOISE_MD = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "NOISE.md"
ROW = re.compile(r"^\|\s*(\w+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|$")


def reference_table() -> list[tuple[str, float, float, float]]:
    if not NOISE_MD.is_file():
        pytest.skip(f"{NOISE_MD} is not here (../shared is absent)")
    text = NOISE_MD.read_text(encoding="utf-8")
    section = text.split("## The paper's curves, level by level", 1)
    if len(section) < 2:
        pytest.fail("NOISE.md has no section 'The paper's curves, level by level'")
    body = section[1].split("\n## ", 1)[0]
    rows = [ROW.match(line.strip()) for line in body.splitlines()]
    return [(m[1], float(m[2]), float(m[3]), float(m[4])) for m in rows if m]


def test_the_data_equals_the_reference_table() -> None:
    table = reference_table()
    assert len(table) == 19
    ours = [(p.noise, p.level, p.masked, p.baseline) for p in PAPER_POINTS]
    assert ours == table


def test_the_grid_and_the_lookups() -> None:
    grid = paper_grid()
    assert len(grid) == 19 and len(set(grid)) == 19
    assert [s.kind for s in dict.fromkeys(grid)][:1] == ["correlated"]
    assert list(dict.fromkeys(s.kind for s in grid)) == list(PAPER_KINDS)
    assert [p.level for p in paper_curve("poisson")] == [2, 2.5, 3, 3.5]
    assert paper_curve("gaussian") == []
    point = paper_point(NoiseSpec("poisson", 3.5))
    assert point is not None and point.lead == pytest.approx(5.95)
    assert paper_point(NoiseSpec("gaussian", 15)) is None
