"""Work in a child process that can be killed: for library calls a thread cannot interrupt.

Kept free of Qt and torch: the child imports this module (spawn start method), so a light one
starts fast.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

POLL_S = 0.1


class ChildDied(OSError):
    """The child process ended without an answer (killed by the system, or crashed)."""


def run_killable(
    fn: Callable[..., Any], args: tuple[Any, ...], cancel: Callable[[], bool], cancelled: type[Exception]
) -> Any:
    """``fn(*args)`` in a child process that is killed as soon as ``cancel()`` is true.

    ``fn`` and ``args`` must be picklable (``fn`` a module-level function). An exception raised
    by ``fn`` is raised here again.

    Args:
        fn: The work.
        args: Its arguments.
        cancel: Polled every 0.1 s while the child works.
        cancelled: The exception to raise when ``cancel()`` became true.

    Raises:
        ChildDied: If the child ended without an answer (out of memory and killed, a crash).
    """
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_answer, args=(sender, fn, args), daemon=True)
    child.start()
    sender.close()  # the child holds the only write end: its death reads as end of file
    try:
        while not receiver.poll(POLL_S):
            if cancel():
                raise cancelled("cancelled while running in a child process")
        try:
            ok, value = receiver.recv()
        except EOFError:
            child.join()
            raise ChildDied(f"the worker process ended without an answer (exit code {child.exitcode}; "
                            "out of memory?)") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if not ok:
        raise value
    return value


def _answer(sender: Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The child's side: send ``(True, result)`` or ``(False, exception)``."""
    try:
        answer: tuple[bool, Any] = (True, fn(*args))
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
        answer = (False, exc)
    try:
        sender.send(answer)
    except Exception as exc:  # noqa: BLE001 - an answer that does not pickle
        sender.send((False, RuntimeError(f"could not send the result back: {exc}")))
    finally:
        sender.close()
