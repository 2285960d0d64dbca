"""Tasks: the ``@task`` and ``@tag`` decorators and the compiled task table.

Declaring tasks (on a User or a TaskSet class), in any mix:

- ``@task`` / ``@task(weight)`` on ``async def`` methods; collected across the
  MRO by name, so an override decides (an override without ``@task`` is not a
  task), in the order of first declaration (base classes first);
- ``tasks = [fn_or_taskset, ...]`` (weight 1 each; repeat an entry to weigh it)
  or ``tasks = {fn_or_taskset: weight, ...}``; the nearest ``tasks`` in the MRO
  counts, and its entries come before the decorated methods.

A TaskSet class is a valid task: running it runs its own loop until it is
interrupted. ``@tag(*names)`` marks functions and TaskSet classes; a TaskSet's
tags are inherited by every task nested in it.

Compilation (:func:`compile_tasks`) turns the declaration into an immutable
:class:`TaskTable`, filtered by ``tags`` (keep a task having any of them) and
``exclude_tags`` (drop a task having any of them). A TaskSet entry carries its
own nested table compiled at that position (so inherited tags apply), and a
TaskSet whose nested table ends up empty is dropped. Tables are shared by all
users of a run: they are built once per class and never mutated.

Selection is weighted random over precomputed cumulative weights (bisect), with
an injected :class:`random.Random`; :attr:`TaskTable.sequence` is the declared
order with each task repeated ``weight`` times, for SequentialTaskSet.

Invariants: every weight is an ``int`` >= 1; a compiled table never contains a
TaskSet entry without a non-empty nested table; recursion (a TaskSet nested in
itself) is refused with ``TypeError``.
"""

from __future__ import annotations

import inspect
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar, overload

if TYPE_CHECKING:
    from collections.abc import Sequence
    from random import Random

    from phalanx.scripting.taskset import TaskSet

TaskFunction: TypeAlias = Callable[[Any], Awaitable[Any]]
"""An ``async def`` task: called with the User or TaskSet instance."""

if TYPE_CHECKING:
    TaskDeclaration: TypeAlias = (
        Sequence[TaskFunction | type[TaskSet]] | Mapping[TaskFunction | type[TaskSet], int]
    )
    """What a ``tasks`` class attribute may hold."""

WEIGHT_ATTRIBUTE: Final = "phalanx_task_weight"
"""Attribute that ``@task`` sets on the decorated function (or TaskSet class)."""

TAGS_ATTRIBUTE: Final = "phalanx_tags"
"""Attribute that ``@tag`` sets: a ``frozenset[str]`` of tag names."""

_T = TypeVar("_T")


def check_weight(weight: object, what: str) -> int:
    """Return ``weight`` if it is an ``int`` >= 1, else raise with a clear message."""
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise TypeError(f"{what}: weight must be an integer >= 1, got {weight!r}")
    if weight < 1:
        raise ValueError(f"{what}: weight must be an integer >= 1, got {weight!r}")
    return weight


@overload
def task(weight: _T) -> _T: ...


@overload
def task(weight: int = 1) -> Callable[[_T], _T]: ...


def task(weight: Any = 1) -> Any:
    """Mark a method (or a nested TaskSet class) as a task: ``@task`` or ``@task(3)``."""
    if callable(weight):
        setattr(weight, WEIGHT_ATTRIBUTE, 1)
        return weight
    checked = check_weight(weight, "@task()")

    def decorate(target: _T) -> _T:
        if not callable(target):
            raise TypeError(f"@task({checked}) must decorate a function, got {target!r}")
        setattr(target, WEIGHT_ATTRIBUTE, checked)
        return target

    return decorate


def tag(*names: str) -> Callable[[_T], _T]:
    """Tag a task function or a TaskSet class; stacks with other ``@tag`` uses."""
    if not names:
        raise TypeError("@tag() needs at least one tag name")
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"@tag(): tag names must be non-empty strings, got {name!r}")

    def decorate(target: _T) -> _T:
        if not callable(target):
            raise TypeError(f"@tag() must decorate a function or a TaskSet class, got {target!r}")
        setattr(target, TAGS_ATTRIBUTE, tags_of(target) | frozenset(names))
        return target

    return decorate


def tags_of(target: object) -> frozenset[str]:
    """The tags set on ``target`` by ``@tag`` (empty when none)."""
    tags = getattr(target, TAGS_ATTRIBUTE, None)
    return tags if isinstance(tags, frozenset) else frozenset()


def _marked_weight(member: object) -> int | None:
    """The ``@task`` weight of a class member, or None when it is not a task."""
    if isinstance(member, type):
        weight = member.__dict__.get(WEIGHT_ATTRIBUTE)  # not inherited by subclasses
    else:
        weight = getattr(member, WEIGHT_ATTRIBUTE, None)
    return weight if isinstance(weight, int) else None


def declared_tasks(cls: type) -> list[tuple[object, int]]:
    """The raw ``(task, weight)`` pairs declared on ``cls``, in declaration order.

    Entries are not checked here beyond the weights of a ``tasks`` dict;
    :func:`compile_tasks` checks what each entry is.
    """
    where = f"tasks of {cls.__qualname__}"
    pairs: list[tuple[object, int]] = []
    explicit = getattr(cls, "tasks", None)
    if isinstance(explicit, Mapping):
        for target, weight in explicit.items():
            pairs.append((target, check_weight(weight, f"{where}[{_describe(target)}]")))
    elif isinstance(explicit, list | tuple):
        pairs.extend((target, 1) for target in explicit)
    elif explicit is not None:
        raise TypeError(f"{where}: `tasks` must be a list or a dict, got {type(explicit).__name__}")
    seen: set[str] = set()
    for klass in reversed(cls.__mro__):
        for name in klass.__dict__:
            if name in seen or name.startswith("__"):
                continue
            seen.add(name)
            member = inspect.getattr_static(cls, name, None)
            weight = _marked_weight(member)
            if weight is not None:
                pairs.append((member, weight))
    return pairs


def _describe(target: object) -> str:
    name = getattr(target, "__qualname__", None)
    return name if isinstance(name, str) else repr(target)


def is_plain_function(target: object) -> bool:
    """True for a ``def`` function (not ``async def``): it cannot be awaited as a task."""
    return inspect.isfunction(target) and not inspect.iscoroutinefunction(target)


@dataclass(frozen=True, slots=True)
class TaskEntry:
    """One row of a task table: a function, or a TaskSet with its nested table."""

    name: str  # the qualified name used in error reports
    weight: int
    tags: frozenset[str]  # own tags plus those inherited from enclosing TaskSets
    function: TaskFunction | None = None
    taskset: type[TaskSet] | None = None
    table: TaskTable | None = None  # set exactly when ``taskset`` is


@dataclass(frozen=True, slots=True)
class TaskTable:
    """An immutable, weighted table of tasks; build it with :meth:`of`."""

    entries: tuple[TaskEntry, ...]
    cumulative: tuple[int, ...]
    sequence: tuple[TaskEntry, ...]

    @classmethod
    def of(cls, entries: Iterable[TaskEntry]) -> TaskTable:
        rows = tuple(entries)
        return cls(
            entries=rows,
            cumulative=tuple(accumulate(row.weight for row in rows)),
            sequence=tuple(row for row in rows for _ in range(row.weight)),
        )

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def total_weight(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    def pick(self, rng: Random) -> TaskEntry:
        """A task chosen with probability ``weight / total_weight``.

        Raises ``IndexError`` on an empty table.
        """
        entries = self.entries
        if len(entries) == 1:
            return entries[0]
        cumulative = self.cumulative
        index = bisect_right(cumulative, rng.random() * cumulative[-1])
        return entries[min(index, len(entries) - 1)]  # guard float rounding at the top


def _is_taskset_class(target: object) -> bool:
    from phalanx.scripting.taskset import TaskSet  # deferred: taskset builds on this module

    return isinstance(target, type) and issubclass(target, TaskSet)


def compile_tasks(
    cls: type,
    tags: frozenset[str] | None = None,
    exclude_tags: frozenset[str] | None = None,
    inherited: frozenset[str] = frozenset(),
) -> TaskTable:
    """Compile and filter the task table of a User or TaskSet class.

    ``tags=None`` keeps every task; an empty ``tags`` set keeps none.
    Raises ``TypeError``/``ValueError`` for an invalid declaration.
    """
    return _compile(cls, tags, exclude_tags, inherited, ())


def _compile(
    cls: type,
    tags: frozenset[str] | None,
    exclude_tags: frozenset[str] | None,
    inherited: frozenset[str],
    enclosing: tuple[type, ...],
) -> TaskTable:
    if cls in enclosing:
        chain = " -> ".join(klass.__qualname__ for klass in (*enclosing, cls))
        raise TypeError(f"TaskSet {cls.__qualname__} is nested in itself ({chain})")
    rows: list[TaskEntry] = []
    for target, weight in declared_tasks(cls):
        effective = inherited | tags_of(target)
        if exclude_tags and effective & exclude_tags:
            continue
        if isinstance(target, type) and _is_taskset_class(target):
            nested = _compile(target, tags, exclude_tags, effective, (*enclosing, cls))
            if nested.entries:
                rows.append(TaskEntry(target.__qualname__, weight, effective, None, target, nested))
            continue
        if isinstance(target, type):
            raise TypeError(
                f"tasks of {cls.__qualname__}: {target.__qualname__} is a class but not a "
                "TaskSet; only async functions and TaskSet classes can be tasks"
            )
        if not callable(target):
            raise TypeError(
                f"tasks of {cls.__qualname__}: {target!r} is not a function or a TaskSet class"
            )
        if is_plain_function(target):
            raise TypeError(
                f"task {_describe(target)!r} of class {cls.__qualname__} is a plain function; "
                "tasks must be `async def`"
            )
        if tags is not None and not effective & tags:
            continue
        rows.append(TaskEntry(_describe(target), weight, effective, target))
    return TaskTable.of(rows)


def iter_nested_tasksets(table: TaskTable) -> Iterator[type[TaskSet]]:
    """Every TaskSet class reachable from ``table`` (depth first, may repeat)."""
    for entry in table.entries:
        if entry.taskset is not None and entry.table is not None:
            yield entry.taskset
            yield from iter_nested_tasksets(entry.table)


def classes_without_tasks(
    classes: Iterable[type],
    tags: frozenset[str] | None,
    exclude_tags: frozenset[str] | None,
) -> list[type]:
    """The classes whose task table is empty once filtered (the engine drops them)."""
    return [cls for cls in classes if not compile_tasks(cls, tags, exclude_tags).entries]
