"""Shared pieces of mdn's command lines: one-line errors and checked argument types."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

USAGE_STATUS = 2
INTERRUPTED_STATUS = 130
TRACEBACK_ENV = "MDN_TRACEBACK"  # set to 1 to see tracebacks instead of one-line reports
DEVICE_HELP = "cpu, cuda, cuda:N or auto (default: CUDA when available)"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Python raises KeyboardInterrupt for Ctrl-C.

    Their default action kills the process on the spot, leaving the temporary file of a
    write under way beside its target; raised, they unwind through the same clean-up as
    Ctrl-C (every ``except BaseException`` / ``finally`` runs).

    Attributes:
        signum: The signal's number; the exit status is 128 + signum (143, 129).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# Signals that end a command as Ctrl-C does (SIGINT is Python's own KeyboardInterrupt).
TERMINATING_SIGNALS = ("SIGTERM", "SIGHUP")


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` (main thread only).

    Only signals at their default action are taken over: one that is ignored stays ignored
    (``nohup`` ignores SIGHUP), and a handler installed before (an enclosing block, training's
    stop-after-the-iteration) stays in charge.
    """
    previous = {}
    try:
        for name in TERMINATING_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None and signal.getsignal(number) == signal.SIG_DFL:
                previous[number] = signal.signal(number, _raise_terminated)
    except ValueError:  # not the main thread: signals stay as they are
        pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class UsageError(ValueError):
    """A bad option value or combination found after parsing; reported as argparse's are (status 2)."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line."""

    def error(self, message: str) -> Any:
        self.exit(USAGE_STATUS, usage_line(self.prog, message) + "\n")


def usage_line(prog: str, message: str) -> str:
    """The one-line report of a usage error, e.g. ``mdn noise: error: ... (see 'mdn noise --help')``."""
    return f"{prog}: error: {message} (see '{prog} --help')"


def describe_error(exc: BaseException) -> str:
    """The first line of an error's message, :func:`printable`; OS errors without ``[Errno N]``."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc)
    lines = text.strip().splitlines()
    return printable(lines[0]) if lines else type(exc).__name__


def printable(text: str) -> str:
    """``text`` safe to print: file-name bytes that are not UTF-8 (surrogates) become ``\\udcXX``.

    Printing them as they are fails on a strict stream (``PYTHONIOENCODING=utf-8``, pipes
    under some locales), after the work is done.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _WarningLines(logging.Handler):
    """Prints warnings and log records as ``<prog>: warning: ...`` lines, each text once."""

    def __init__(self, prog: str) -> None:
        super().__init__(logging.WARNING)
        self.prog = prog
        self.shown: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.show(record.getMessage())

    def show(self, message: Warning | str, *_: Any, **__: Any) -> None:
        """Print one warning (the signature of :func:`warnings.showwarning`)."""
        text = describe_error(message) if isinstance(message, Warning) else printable(str(message))
        if text not in self.shown:
            self.shown.add(text)
            print(f"{self.prog}: warning: {text}", file=sys.stderr)


@contextlib.contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Within the block, show warnings and model_core's log records as one line each, once."""
    lines = _WarningLines(prog)
    logger = logging.getLogger("model_core")
    logger.addHandler(lines)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = lines.show
            yield
    finally:
        logger.removeHandler(lines)


def run_reported(prog: str, body: Callable[[], int],
                 errors: tuple[type[Exception], ...] = (ValueError, OSError), *,
                 own_warnings: bool = True) -> int:
    """Run a command's ``body`` and turn how it ends into an exit status, with one line on stderr.

    Args:
        prog: The command's name in messages, e.g. ``"mdn eval"``.
        body: The command; returns its exit status.
        errors: Errors the user can fix: reported as ``<prog>: error: ...`` (status 1), or as a
            usage error (status 2) for :class:`UsageError`; set ``MDN_TRACEBACK=1`` to raise them.
        own_warnings: Show warnings as one line each (off where ``body`` is a command that does so).

    Returns:
        The exit status: the body's, 2 for usage errors, 1 for other errors or a closed
        output pipe, 130 when interrupted (Ctrl-C), 143 for SIGTERM and 129 for SIGHUP
        (:func:`signals_interrupt`: files being written are cleaned up as for Ctrl-C).
    """
    try:
        with signals_interrupt(), one_line_warnings(prog) if own_warnings else contextlib.nullcontext():
            return int(body())
    except SystemExit as exc:  # argparse's --help and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Terminated as exc:
        print(f"{prog}: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED_STATUS
    except BrokenPipeError:  # the reader went away (mdn info x | head -1): nothing to report
        silence_stdout()
        return 1
    except errors as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        if isinstance(exc, UsageError):
            print(usage_line(prog, describe_error(exc)), file=sys.stderr)
            return USAGE_STATUS
        print(f"{prog}: error: {describe_error(exc)}", file=sys.stderr)
        return 1


def silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit does not fail on the broken pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """argparse type: an integer from ``lo`` to ``hi``."""

    def parse(text: str) -> int:
        value = _integer(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {value}")
        return value

    return parse


def ratio(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def device_name(text: str) -> str:
    """argparse type: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether it exists is checked later)."""
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}")
    return text


def png_path(text: str) -> Any:
    """argparse type: a path ending in .png."""
    from pathlib import Path

    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"must be a .png file, got {text!r}")
    return path
