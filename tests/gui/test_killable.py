"""Work in a killable child process (BM3D in the app): answers, errors, cancel, a dying child."""

from __future__ import annotations

import math
import multiprocessing
import os
import time

import pytest

from mdn_gui.killable import ChildDied, run_killable


class Stopped(Exception):
    pass


def test_the_answer_and_the_errors_of_the_child_come_back() -> None:
    assert run_killable(math.sqrt, (6.25,), lambda: False, Stopped) == 2.5
    with pytest.raises(ValueError, match="math domain error"):
        run_killable(math.sqrt, (-1.0,), lambda: False, Stopped)
    assert not multiprocessing.active_children()


def test_cancel_kills_the_child_at_once() -> None:
    start = time.perf_counter()
    with pytest.raises(Stopped):
        run_killable(time.sleep, (60,), lambda: time.perf_counter() - start > 0.5, Stopped)
    assert time.perf_counter() - start < 30 and not multiprocessing.active_children()


def test_a_child_that_dies_is_an_error_not_a_hang() -> None:
    """Review: with a process pool, a child killed by the system (out of memory) was replaced
    quietly and the answer waited for for ever."""
    start = time.perf_counter()
    with pytest.raises(ChildDied, match="exit code 3"):
        run_killable(os._exit, (3,), lambda: time.perf_counter() - start > 60, Stopped)
    assert not multiprocessing.active_children()
