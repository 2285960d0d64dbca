"""The task loop shared by users and TaskSets.

One loop (:func:`task_loop`) serves a User and every TaskSet nested in it; the
*owner* is the instance whose tasks run (User or TaskSet), the *user* is the
simulated user that owns the whole stack (the one with the stop/wait state).

Per iteration: stop if the user was asked to stop; pick a task; run it; stop
if asked meanwhile; wait ``owner.wait_time()`` seconds. Outcomes of a task:

- returns, or raises ``RescheduleTask``: the loop goes on;
- raises any other ``Exception``: reported (see :mod:`.reporting`), loop goes on;
- a nested TaskSet raises ``InterruptTaskSet``: control is back in this loop;
  with ``reschedule=True`` the wait is skipped (a zero wait, see below);
- a task of a TaskSet raises ``InterruptTaskSet``: it propagates (it ends
  that TaskSet); from a User's own task it is a misuse and is reported;
- ``StopUser``, ``CancelledError`` and other ``BaseException``: propagate.

Zero waits: a task that waits on I/O has already let the loop run other
users, so yielding again after every task only costs a loop turn per request.
A zero wait therefore yields (suspends until the loop's next turn) only on
every :data:`ZERO_WAIT_YIELD_EVERY`-th consecutive zero wait. Guarantee: a
user whose tasks never suspend still gives the loop a turn at least every 8
tasks (elapsed time cannot tell a task that suspended from one that did not,
so the bound is a count). The stop check runs before every task either way.

Waiting: while asleep (or yielding) the user's ``is_waiting`` is True. If the sleep is
cancelled *after* ``request_stop()``, the cancellation is absorbed (the task's
cancel request is withdrawn with ``Task.uncancel()``, so timeouts inside
``on_stop`` still work) and the loop returns normally, letting each level run
its ``on_stop``. A cancellation at any other time propagates unchanged.

Timing attributes maintained on the user (see :mod:`.wait_time`):
``task_started_at`` before a task runs, ``last_task_duration`` after it ends.
"""

from __future__ import annotations

import asyncio
import math
import time
import types
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final, NoReturn

from phalanx.core.errors import InterruptTaskSet, RescheduleTask, StopUser
from phalanx.scripting.reporting import report_exception

if TYPE_CHECKING:
    from phalanx.scripting.task import TaskEntry, TaskTable
    from phalanx.scripting.taskset import TaskSet
    from phalanx.scripting.user import User

WAITING: Final = 1
"""Bit of ``User._state``: the user is sleeping between two tasks."""
STOPPING: Final = 2
"""Bit of ``User._state``: ``request_stop()`` was called."""
MAX_WAIT: Final = 365 * 24 * 3600.0
"""Longest single wait (seconds); longer (or infinite) wait times are capped."""
ZERO_WAIT_YIELD_EVERY: Final = 8
"""A user with zero waits yields to the event loop at least once every this many tasks."""


def hook_name(owner: object, name: str) -> str:
    """The qualified name reported for a hook, e.g. ``Shopper.on_start``."""
    function = getattr(type(owner), name, None)
    qualname = getattr(function, "__qualname__", None)
    return qualname if isinstance(qualname, str) else f"{type(owner).__qualname__}.{name}"


async def run_hook(
    owner: User | TaskSet,
    user: User,
    name: str,
    passthrough: tuple[type[BaseException], ...],
) -> bool:
    """Await ``owner.<name>()``; True if it completed, False if it raised (reported).

    Exceptions in ``passthrough`` (and every non-``Exception``) propagate.
    """
    hook = getattr(owner, name)
    try:
        await hook()
    except passthrough:
        raise
    except Exception as exc:
        report_exception(user.context, hook_name(owner, name), exc)
        return False
    return True


def _checked_seconds(owner: User | TaskSet, user: User, seconds: Any) -> float:
    """``seconds`` (a ``wait_time()`` result off ``task_loop``'s fast path) made valid.

    Negative values count as 0 and values are capped at :data:`MAX_WAIT`; a
    non-number or NaN is an error, reported, and stops the user.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or math.isnan(seconds):
        try:
            raise TypeError(f"wait_time() must return a number of seconds, got {seconds!r}")
        except TypeError as exc:  # raised, so that it has a traceback to report
            _wait_time_failed(owner, user, exc)
    return min(max(0.0, float(seconds)), MAX_WAIT)


def _wait_time_failed(owner: User | TaskSet, user: User, exc: Exception) -> NoReturn:
    """Handle an exception of ``wait_time()``: re-raise ``StopUser`` (and a TaskSet's
    ``InterruptTaskSet``), else report it and stop the user."""
    if isinstance(exc, StopUser) or (isinstance(exc, InterruptTaskSet) and owner is not user):
        raise exc  # StopUser anywhere; interrupt() from a TaskSet's wait_time
    report_exception(user.context, hook_name(owner, "wait_time"), exc)
    raise StopUser from exc


async def task_loop(owner: User | TaskSet, user: User, table: TaskTable) -> None:
    """Run ``owner``'s tasks from ``table`` until the user stops (see the module docstring).

    Hot path: a task runs inline here (no helper coroutine per task), a
    one-task table skips the pick, and zero waits yield to the loop with one
    bare ``yield`` (what ``asyncio.sleep(0)`` does, without its two frames),
    only as often as :data:`ZERO_WAIT_YIELD_EVERY` requires.
    """
    entries = table.entries
    if not entries:
        return
    single = entries[0] if len(entries) == 1 else None
    next_entry = owner._next_entry
    perf_counter = time.perf_counter
    unyielded = 0  # zero waits since the loop last yielded or slept
    while not user._state & STOPPING:
        entry = single if single is not None else next_entry(table)
        skip_wait = False
        started = perf_counter()
        user.task_started_at = started
        try:
            function = entry.function
            if function is not None:
                await function(owner)
            else:
                await _run_taskset(owner, entry)
        except RescheduleTask:
            pass
        except InterruptTaskSet as interrupt:
            if entry.function is None:
                skip_wait = interrupt.reschedule  # the nested TaskSet handed control back
            elif owner is not user:
                raise  # ends the TaskSet that owns this task
            else:
                misuse = RuntimeError(
                    "interrupt() was called from a User's task; only TaskSets can be interrupted"
                )
                report_exception(
                    user.context, entry.name, misuse.with_traceback(interrupt.__traceback__)
                )
        except StopUser:
            raise
        except Exception as exc:
            report_exception(user.context, entry.name, exc)
        finally:
            user.last_task_duration = perf_counter() - started
        if user._state & STOPPING:
            return
        if skip_wait:
            seconds = 0.0
        else:
            # A float in range is the common case; anything else goes to _checked_seconds.
            # Typed as returning an object on purpose: compiled, a float result would be
            # checked by mypyc (its own TypeError) before _checked_seconds could judge it.
            wait_time: Callable[[], object] = owner.wait_time
            try:
                waited = wait_time()
            except Exception as exc:
                _wait_time_failed(owner, user, exc)
            if type(waited) is float and 0.0 <= waited <= MAX_WAIT:
                seconds = waited
            else:
                seconds = _checked_seconds(owner, user, waited)
        if seconds <= 0.0:
            unyielded += 1
            if unyielded < ZERO_WAIT_YIELD_EVERY:
                continue  # the zero wait needs no yield yet (see the module docstring)
        user._state |= WAITING
        try:
            if seconds > 0.0:
                await asyncio.sleep(seconds)
            else:
                await _yield_to_loop()
        except asyncio.CancelledError:
            if not user._state & STOPPING:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            return
        finally:
            user._state &= ~WAITING
        unyielded = 0


async def _run_taskset(owner: User | TaskSet, entry: TaskEntry) -> None:
    """Run the nested TaskSet of ``entry`` (a task that is a TaskSet class)."""
    taskset = entry.taskset
    if taskset is not None:
        child = taskset(owner)
        child._table = entry.table
        await child.run()


@types.coroutine
def _yield_to_loop() -> Generator[None, None, None]:
    """Suspend once and resume on the loop's next iteration (``asyncio.sleep(0)``)."""
    yield
