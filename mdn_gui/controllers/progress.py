"""Elapsed time and time left of the run under way, from the share of its work done. No Qt.

The engine reports the share of a run's pixels done after its preview and after every tile
(:attr:`model_core.engine.Progress.fraction`); :class:`RunClock` turns that into an estimate
of the time left, which counts down between reports, so that a run of one large tile (a
preview, then minutes of nothing) still shows a moving estimate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

# Runs shorter than this show no progress in the status bar (it would only flicker).
SHOW_AFTER_SECONDS = 1.0


def duration_text(seconds: float) -> str:
    """``"7 s"``, ``"2 min 05 s"``, ``"1 h 02 min"``: a duration for people."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class RunStatus:
    """Where the run under way stands.

    Attributes:
        fraction: Share of its work done, in [0, 1].
        elapsed: Seconds since it started.
        remaining: Estimated seconds left; None before anything is done.
        message: The engine's words (``"pass 1/2, tile 3/9"``).
    """

    fraction: float
    elapsed: float
    remaining: float | None
    message: str

    def text(self) -> str:
        """One line for the status bar."""
        if self.remaining is None:
            left = "estimating time left"
        else:
            left = f"about {duration_text(self.remaining)} left"
        return f"{self.message}: {self.fraction:.0%}, {left} ({duration_text(self.elapsed)} so far)"


class RunClock:
    """Follows one run at a time (a new key starts it over) and estimates the time it has left.

    Args:
        clock: Seconds from a monotonic clock (tests pass a fake one).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._key: Hashable | None = None
        self._start = self._stamp = 0.0
        self._fraction = 0.0
        self._left_at_stamp: float | None = None
        self._message = ""

    def update(self, key: Hashable, fraction: float, message: str) -> None:
        """Record progress of the run ``key`` (another key than before starts a new run)."""
        now = self._clock()
        if key != self._key:
            self._key, self._start, self._left_at_stamp = key, now, None
        self._fraction, self._stamp, self._message = min(max(fraction, 0.0), 1.0), now, message
        elapsed = now - self._start
        if self._fraction > 0:
            self._left_at_stamp = elapsed * (1.0 - self._fraction) / self._fraction

    def stop(self) -> None:
        """No run is under way any more."""
        self._key = None

    @property
    def running(self) -> bool:
        return self._key is not None

    def status(self) -> RunStatus | None:
        """The run's status now (the estimate counts down since the last report), or None."""
        if self._key is None:
            return None
        now = self._clock()
        left = self._left_at_stamp
        if left is not None:
            left = max(0.0, left - (now - self._stamp))
        return RunStatus(self._fraction, now - self._start, left, self._message)
