"""TaskSets: groups of tasks with their own loop, nested inside a user.

A TaskSet class used as a task of a User (or of another TaskSet) is
instantiated each time it is picked, with the picking instance as ``parent``;
then :meth:`TaskSet.run` runs ``on_start``, its own task loop, and
``on_stop``. The loop goes on until a task calls :meth:`TaskSet.interrupt`
(control returns to the parent), the user is asked to stop, or ``StopUser``
is raised. ``on_stop`` runs in each of these cases (not when the user's task
is cancelled outside a wait). A failing ``on_start`` is reported and the
TaskSet returns to its parent after ``on_stop``.

``wait_time`` falls back to the user's when the TaskSet class sets none.
``self.client``, ``self.random``, ``self.measure()`` and the timing attributes
are the user's.

:class:`SequentialTaskSet` runs its tasks in declared order, cycling, each
task ``weight`` times in a row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

from phalanx.core.errors import InterruptTaskSet, StopUser
from phalanx.scripting.runloop import run_hook, task_loop
from phalanx.scripting.task import compile_tasks

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from random import Random

    from phalanx.scripting.measure import Measurement
    from phalanx.scripting.task import TaskDeclaration, TaskEntry, TaskTable
    from phalanx.scripting.user import User

_T = TypeVar("_T")


class TaskSet:
    """A set of tasks run in a loop of its own; see the module docstring."""

    tasks: ClassVar[TaskDeclaration] = ()

    __slots__ = ("_table", "parent", "user")

    def __init__(self, parent: User | TaskSet) -> None:
        self.parent = parent
        self.user: User = parent.user if isinstance(parent, TaskSet) else parent
        self._table: TaskTable | None = None

    async def on_start(self) -> None:
        """Called each time the TaskSet starts; override with ``async def``."""

    async def on_stop(self) -> None:
        """Called each time the TaskSet ends; override with ``async def``."""

    def wait_time(self) -> float:
        """The user's wait time, unless the TaskSet class defines its own."""
        user_wait: Any = self.user.wait_time
        return float(user_wait())

    def interrupt(self, reschedule: bool = True) -> NoReturn:
        """Leave this TaskSet; the parent picks its next task at once if ``reschedule``."""
        raise InterruptTaskSet(reschedule)

    @property
    def client(self) -> Any:
        """The user's client (``HttpUser.client``)."""
        user: Any = self.user
        return user.client

    @property
    def random(self) -> Random:
        return self.user.random

    @property
    def task_started_at(self) -> float:
        return self.user.task_started_at

    @property
    def last_task_duration(self) -> float:
        return self.user.last_task_duration

    def measure(self, method: str, name: str) -> Measurement:
        """Same as :meth:`User.measure`."""
        return self.user.measure(method, name)

    async def measure_call(self, method: str, name: str, awaitable: Awaitable[_T]) -> _T:
        """Same as :meth:`User.measure_call`."""
        return await self.user.measure_call(method, name, awaitable)

    def _next_entry(self, table: TaskTable) -> TaskEntry:
        return table.pick(self.user.context.random)

    def _resolve_table(self) -> TaskTable:
        table = self._table
        if table is None:  # not started by a parent's loop: use this class's own table
            context = self.user.context
            cls = type(self)
            table = context.memo.get(
                ("tasks", cls), lambda: compile_tasks(cls, context.tags, context.exclude_tags)
            )
            self._table = table
        return table

    async def run(self) -> None:
        """on_start, the task loop, on_stop (see the module docstring)."""
        user = self.user
        table = self._resolve_table()
        try:
            if await run_hook(self, user, "on_start", (StopUser, InterruptTaskSet)):
                await task_loop(self, user, table)
        except (StopUser, InterruptTaskSet):
            await run_hook(self, user, "on_stop", (StopUser,))
            raise
        await run_hook(self, user, "on_stop", (StopUser,))


class SequentialTaskSet(TaskSet):
    """A TaskSet whose tasks run in declared order, cycling."""

    __slots__ = ("_position",)

    def __init__(self, parent: User | TaskSet) -> None:
        super().__init__(parent)
        self._position = 0

    def _next_entry(self, table: TaskTable) -> TaskEntry:
        sequence = table.sequence
        entry = sequence[self._position % len(sequence)]
        self._position += 1
        return entry
