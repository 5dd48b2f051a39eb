"""Faults on purpose, for the tests (as SQLite's test harness does): make the Nth file write
fail as a full disk would, or kill the process just before the Nth rename.

Every file rnnkit writes goes through :func:`rnnkit.io.checkpoint.atomic_write` (or the append
of ``metrics.jsonl``), which calls :func:`before` at its two moments. Nothing happens unless a
plan is set: ``RNNKIT_FAULTS`` in the environment (read when rnnkit is imported, so that a
test can give it to a subprocess) or :func:`inject` in the process. A plan is ``ERRNO@N`` (the
Nth write fails with that error before any of its bytes are on disk: ``ENOSPC``, ``EDQUOT``,
``EROFS``, ``EACCES``, ``EIO``) or ``kill@N`` (SIGKILL just before the Nth rename), N counted
from 1 over the process's life. In the process (:func:`inject`), a kill raises :class:`Killed`
instead, which the writer lets pass without cleaning up, as a real kill would.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Iterator
from pathlib import Path

ENVIRONMENT = "RNNKIT_FAULTS"
WRITE_ERRORS = ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EIO")


class Killed(BaseException):
    """A kill, in the process: nothing more is written and nothing is cleaned up."""


class _Plan:
    def __init__(self, text: str, in_process: bool = False) -> None:
        action, _, count = text.partition("@")
        if action != "kill" and action not in WRITE_ERRORS or not count.isdigit() or int(count) < 1:
            raise ValueError(f"{ENVIRONMENT}: expected kill@N or one of {', '.join(WRITE_ERRORS)} followed by @N "
                             f"(N >= 1), got {text!r}")
        self.action, self.at = action, int(count)
        self.moment = "rename" if action == "kill" else "write"
        self.seen = 0
        self.in_process = in_process


_plan: _Plan | None = _Plan(os.environ[ENVIRONMENT]) if os.environ.get(ENVIRONMENT) else None


def before(moment: str, path: Path) -> None:
    """Called by the writer before each ``moment`` ("write" or "rename") of ``path``."""
    if _plan is None or moment != _plan.moment:
        return
    _plan.seen += 1
    if _plan.seen != _plan.at:
        return
    if _plan.action == "kill" and _plan.in_process:
        raise Killed(f"killed before renaming into {path}")
    if _plan.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    code = getattr(errno, _plan.action)
    raise OSError(code, os.strerror(code), str(path))


def count(moment: str) -> int:
    """How many ``moment``s the plan in force has seen (0 without one)."""
    return _plan.seen if _plan is not None and _plan.moment == moment else 0


@contextlib.contextmanager
def inject(plan: str) -> Iterator[None]:
    """Run the block under ``plan`` (see the module's text), counting from this call."""
    global _plan
    previous, _plan = _plan, _Plan(plan, in_process=True)
    try:
        yield
    finally:
        _plan = previous
