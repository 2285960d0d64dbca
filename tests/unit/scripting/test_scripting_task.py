"""@task/@tag, task table compilation, weighted selection and tag filtering."""

from __future__ import annotations

import random
from collections import Counter
from typing import ClassVar

import pytest

from phalanx import TaskSet, User, tag, task
from phalanx.scripting.task import (
    TaskTable,
    classes_without_tasks,
    compile_tasks,
    declared_tasks,
    tags_of,
)


def names(table: TaskTable) -> list[str]:
    return [entry.name.rsplit(".", 1)[-1] for entry in table.entries]


async def standalone(user: object) -> None:
    """A module-level task function (used in ``tasks = [...]``)."""


async def other(user: object) -> None:
    """Another module-level task function."""


def test_task_without_arguments_has_weight_one() -> None:
    class Shopper(User):
        @task
        async def browse(self) -> None: ...

    assert [(e.name, e.weight) for e in compile_tasks(Shopper).entries] == [
        ("test_task_without_arguments_has_weight_one.<locals>.Shopper.browse", 1)
    ]


def test_task_with_a_weight_and_empty_parentheses() -> None:
    class Shopper(User):
        @task(3)
        async def browse(self) -> None: ...

        @task()
        async def item(self) -> None: ...

    table = compile_tasks(Shopper)
    assert [e.weight for e in table.entries] == [3, 1]
    assert table.total_weight == 4


@pytest.mark.parametrize(("weight", "error"), [(0, ValueError), (-2, ValueError),
                                                (1.5, TypeError), (True, TypeError)])
def test_task_weight_must_be_an_integer_of_at_least_one(
    weight: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="weight must be an integer >= 1"):
        task(weight)  # type: ignore[call-overload]


def test_decorated_tasks_are_collected_across_the_mro_base_first() -> None:
    class Base(User):
        abstract = True

        @task
        async def login(self) -> None: ...

        @task
        async def browse(self) -> None: ...

    class Child(Base):
        @task(5)
        async def browse(self) -> None: ...  # override keeps the base's position

        @task
        async def checkout(self) -> None: ...

    table = compile_tasks(Child)
    assert [(e.name.split(".")[-2:], e.weight) for e in table.entries] == [
        (["Base", "login"], 1), (["Child", "browse"], 5), (["Child", "checkout"], 1)
    ]


def test_an_override_without_task_removes_the_task() -> None:
    class Base(User):
        abstract = True

        @task
        async def browse(self) -> None: ...

        @task
        async def item(self) -> None: ...

    class Child(Base):
        async def browse(self) -> None: ...

    assert names(compile_tasks(Child)) == ["item"]


def test_tasks_list_and_dict_declarations() -> None:
    class ListUser(User):
        tasks = [standalone, other, standalone]  # noqa: RUF012 - Locust-style list on purpose

    class DictUser(User):
        tasks: ClassVar = {standalone: 4, other: 1}

    assert [(e.name, e.weight) for e in compile_tasks(ListUser).entries] == [
        ("standalone", 1), ("other", 1), ("standalone", 1)
    ]
    assert [(e.name, e.weight) for e in compile_tasks(DictUser).entries] == [
        ("standalone", 4), ("other", 1)
    ]


def test_explicit_tasks_come_before_decorated_methods() -> None:
    class Mixed(User):
        tasks = (standalone,)

        @task
        async def browse(self) -> None: ...

    assert names(compile_tasks(Mixed)) == ["standalone", "browse"]


def test_tasks_dict_weights_are_validated() -> None:
    class Bad(User):
        tasks: ClassVar = {standalone: 0}

    with pytest.raises(ValueError, match=r"tasks of .*Bad\[standalone\]: weight must be"):
        compile_tasks(Bad)


def test_invalid_task_entries_are_refused() -> None:
    class NotAClass(User):
        tasks = (42,)

    class AUserAsTask(User):
        tasks = (NotAClass,)

    with pytest.raises(TypeError, match="is not a function or a TaskSet class"):
        compile_tasks(NotAClass)
    with pytest.raises(TypeError, match="is a class but not a TaskSet"):
        compile_tasks(AUserAsTask)


def test_plain_function_tasks_are_refused() -> None:
    class Sync(User):
        @task
        def browse(self) -> None: ...

    with pytest.raises(TypeError, match=r"task '.*browse' of class .*Sync is a plain function"):
        compile_tasks(Sync)


def test_taskset_classes_are_tasks_with_a_nested_table() -> None:
    class Browse(TaskSet):
        @task
        async def page(self) -> None: ...

    class Shopper(User):
        tasks: ClassVar = {Browse: 2}

        @task
        async def home(self) -> None: ...

    table = compile_tasks(Shopper)
    entry = table.entries[0]
    assert entry.taskset is Browse
    assert entry.weight == 2
    assert entry.table is not None
    assert names(entry.table) == ["page"]


def test_a_taskset_decorated_with_task_is_collected() -> None:
    class Shopper(User):
        @task(2)
        class Browse(TaskSet):
            @task
            async def page(self) -> None: ...

    entry = compile_tasks(Shopper).entries[0]
    assert entry.taskset is Shopper.Browse
    assert entry.weight == 2


def test_a_taskset_nested_in_itself_is_refused() -> None:
    class Loop(TaskSet):
        @task
        async def page(self) -> None: ...

    Loop.tasks = (Loop,)

    class Shopper(User):
        tasks = (Loop,)

    with pytest.raises(TypeError, match="nested in itself"):
        compile_tasks(Shopper)


def test_pick_follows_the_weights_with_a_seeded_random() -> None:
    class Shopper(User):
        @task(3)
        async def browse(self) -> None: ...

        @task(1)
        async def item(self) -> None: ...

    table = compile_tasks(Shopper)
    rng = random.Random(42)
    draws = 20_000
    counts = Counter(table.pick(rng).name.rsplit(".", 1)[-1] for _ in range(draws))
    assert counts["browse"] / draws == pytest.approx(0.75, abs=0.02)
    assert counts["item"] / draws == pytest.approx(0.25, abs=0.02)


def test_pick_on_an_empty_table_raises() -> None:
    with pytest.raises(IndexError):
        TaskTable.of([]).pick(random.Random(1))


def test_sequence_repeats_each_task_by_its_weight_in_order() -> None:
    class Ordered(User):
        tasks: ClassVar = {standalone: 2, other: 1}

    assert [e.name for e in compile_tasks(Ordered).sequence] == [
        "standalone", "standalone", "other"
    ]


def test_tag_stacks_and_works_in_any_order_with_task() -> None:
    @tag("a")
    @task
    @tag("b", "c")
    async def fn(self: object) -> None: ...

    assert tags_of(fn) == frozenset({"a", "b", "c"})


@pytest.mark.parametrize("bad", [(), ("",), (3,)])
def test_tag_names_must_be_non_empty_strings(bad: tuple[object, ...]) -> None:
    with pytest.raises(TypeError, match="tag"):
        tag(*bad)  # type: ignore[arg-type]


class Tagged(User):
    @tag("checkout")
    @task
    async def buy(self) -> None: ...

    @tag("browse", "slow")
    @task
    async def search(self) -> None: ...

    @task
    async def home(self) -> None: ...


def test_tags_keep_tasks_having_any_of_the_tags() -> None:
    assert names(compile_tasks(Tagged, tags=frozenset({"checkout", "slow"}))) == ["buy", "search"]


def test_exclude_tags_drop_tasks_having_any_of_the_tags() -> None:
    assert names(compile_tasks(Tagged, exclude_tags=frozenset({"slow"}))) == ["buy", "home"]


def test_exclude_wins_over_include() -> None:
    table = compile_tasks(Tagged, tags=frozenset({"browse"}), exclude_tags=frozenset({"slow"}))
    assert names(table) == []


@tag("admin")
class Admin(TaskSet):
    @task
    async def users(self) -> None: ...

    @tag("danger")
    @task
    async def wipe(self) -> None: ...


class WithTaggedTaskSet(User):
    tasks = (Admin,)

    @task
    async def home(self) -> None: ...


def test_taskset_tags_are_inherited_by_its_tasks() -> None:
    table = compile_tasks(WithTaggedTaskSet, tags=frozenset({"admin"}))
    assert [e.taskset for e in table.entries] == [Admin]
    nested = table.entries[0].table
    assert nested is not None
    assert names(nested) == ["users", "wipe"]
    assert nested.entries[1].tags == frozenset({"admin", "danger"})


def test_a_tag_inside_a_taskset_keeps_the_taskset_with_only_that_task() -> None:
    table = compile_tasks(WithTaggedTaskSet, tags=frozenset({"danger"}))
    assert len(table) == 1
    nested = table.entries[0].table
    assert nested is not None
    assert names(nested) == ["wipe"]


def test_excluding_a_taskset_tag_drops_the_whole_taskset() -> None:
    assert names(compile_tasks(WithTaggedTaskSet, exclude_tags=frozenset({"admin"}))) == ["home"]


def test_a_taskset_left_without_tasks_is_dropped() -> None:
    class OnlyDanger(TaskSet):
        @tag("danger")
        @task
        async def wipe(self) -> None: ...

    class Holder(User):
        tasks = (OnlyDanger,)

        @task
        async def home(self) -> None: ...

    assert names(compile_tasks(Holder, exclude_tags=frozenset({"danger"}))) == ["home"]


def test_classes_without_tasks_lists_the_classes_emptied_by_filtering() -> None:
    class Browser(User):
        @tag("browse")
        @task
        async def home(self) -> None: ...

    class Buyer(User):
        @tag("buy")
        @task
        async def buy(self) -> None: ...

    assert classes_without_tasks([Browser, Buyer], frozenset({"buy"}), None) == [Browser]
    assert classes_without_tasks([Browser, Buyer], None, frozenset({"buy", "browse"})) == [
        Browser, Buyer
    ]
    assert classes_without_tasks([Browser, Buyer], None, None) == []


def test_declared_tasks_ignores_plain_methods_and_attributes() -> None:
    class Shopper(User):
        host = "http://127.0.0.1"

        async def helper(self) -> None: ...

        @task
        async def browse(self) -> None: ...

    assert [getattr(t, "__name__", None) for t, _ in declared_tasks(Shopper)] == ["browse"]
