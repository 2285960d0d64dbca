"""load_script / select_user_classes: what a script yields, and one clear error per mistake."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import pytest

from phalanx import LoadShape
from phalanx.core.errors import ScriptError
from phalanx.scripting.loader import MODULE_PREFIX, load_script, select_user_classes

GOOD = """\
from phalanx import HttpUser, LoadShape, TaskSet, User, between, task


class Base(HttpUser):
    abstract = True
    host = "http://127.0.0.1:8089"


class Shopper(Base):
    wait_time = between(0.5, 2)

    @task(3)
    async def browse(self):
        await self.client.get("/items")


class Browse(TaskSet):
    @task
    async def page(self):
        self.interrupt()


class Reader(User):
    tasks = [Browse]


class Steps(LoadShape):
    def tick(self):
        return None
"""


def write(directory: Path, text: str, name: str = "script.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(path: Path) -> ScriptError:
    with pytest.raises(ScriptError) as info:
        load_script(path)
    message = str(info.value)
    assert "Traceback" not in message
    assert "\n" not in message
    assert info.value.__cause__ is None
    return info.value


def test_a_valid_script_yields_concrete_users_in_order_and_its_shape(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    loaded = load_script(path)
    assert [cls.__name__ for cls in loaded.user_classes] == ["Shopper", "Reader"]
    assert loaded.shape_class is not None
    assert loaded.shape_class.__name__ == "Steps"
    assert issubclass(loaded.shape_class, LoadShape)
    assert loaded.path == path
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_load_gets_a_unique_module_and_the_script_dir_stays_importable(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, GOOD)
    before = list(sys.path)
    try:
        first = load_script(path).user_classes[0]
        second = load_script(path).user_classes[0]
        assert first is not second
        assert first.__module__ != second.__module__
        assert first.__module__.startswith(MODULE_PREFIX)
        assert sys.modules[first.__module__].__file__ == str(path.resolve())
        # kept (once) so tasks can import modules next to the script lazily at run time
        assert sys.path == [str(tmp_path.resolve()), *before]
        assert "script" not in sys.modules
    finally:
        sys.path[:] = before


def test_a_failed_load_leaves_sys_path_as_it_was(tmp_path: Path) -> None:
    path = write(tmp_path, "raise RuntimeError('broken')\n")
    before = list(sys.path)
    with pytest.raises(ScriptError):
        load_script(path)
    assert sys.path == before


def test_a_script_can_import_a_module_next_to_it(tmp_path: Path) -> None:
    helper = "scripting_loader_helper_ok"
    write(tmp_path, "PATH = '/items'\n", f"{helper}.py")
    path = write(tmp_path, f"""\
        from phalanx import User, task
        from {helper} import PATH

        class Reader(User):
            @task
            async def read(self):
                return PATH
        """)
    try:
        loaded = load_script(path)
    finally:
        sys.modules.pop(helper, None)
    assert [cls.__name__ for cls in loaded.user_classes] == ["Reader"]


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.py")
    assert str(error) == f"{tmp_path / 'nope.py'}: file not found"


def test_a_file_that_is_not_python_is_refused(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, GOOD, "script.txt"))
    assert "not a .py file" in str(error)
    (tmp_path / "dir.py").mkdir()
    assert "not a file" in str(load_error(tmp_path / "dir.py"))


def test_a_syntax_error_names_file_line_and_message(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import User, task

        class Shopper(User):
            @task
            async def browse(self)
                pass
        """)
    error = load_error(path)
    assert (error.path, error.line) == (str(path), 5)
    assert str(error).startswith(f"{path}:5: syntax error: ")
    assert "async def browse(self)" in str(error)


def test_an_exception_while_importing_names_type_message_and_script_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import User, task

        RATE = 1 / 0
        """)
    error = load_error(path)
    assert str(error) == (
        f"{path}:3: error while importing the script: ZeroDivisionError: division by zero"
    )


def test_an_exception_in_a_helper_module_points_at_the_script_and_the_helper(
    tmp_path: Path,
) -> None:
    helper = "scripting_loader_helper_broken"
    write(tmp_path, "x = 1\nraise RuntimeError('helper broke')\n", f"{helper}.py")
    path = write(tmp_path, f"""\
        from phalanx import User
        import {helper}
        """)
    try:
        error = load_error(path)
    finally:
        sys.modules.pop(helper, None)
    assert str(error).startswith(
        f"{path}:2: error while importing the script: RuntimeError: helper broke (raised in "
    )
    assert str(error).endswith(f"{helper}.py:2)")


def test_a_decorator_misuse_during_import_is_an_import_error(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import User, task

        class Shopper(User):
            @task(0)
            async def browse(self):
                pass
        """)
    error = load_error(path)
    assert error.line == 4
    assert "ValueError: @task(): weight must be an integer >= 1, got 0" in str(error)


def test_sys_exit_in_a_script_is_reported(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "import sys\nsys.exit(3)\n"))
    assert error.line == 2
    assert "sys.exit(3)" in str(error)


def test_a_script_without_user_classes_is_refused(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, """\
        from phalanx import HttpUser

        class Base(HttpUser):
            abstract = True
        """))
    assert "no User class found" in str(error)
    assert error.path is not None


def test_a_plain_function_task_names_the_function_and_its_def_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import HttpUser, tag, task

        class Shopper(HttpUser):
            host = "http://127.0.0.1"

            @tag("x")
            @task
            def browse(self):
                pass
        """)
    error = load_error(path)
    assert str(error) == (
        f"{path}:8: task 'browse' of class Shopper is a plain function; tasks must be `async def`"
    )


def test_a_plain_function_in_a_tasks_list_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import User

        def browse(user):
            pass

        class Shopper(User):
            tasks = [browse]
        """)
    error = load_error(path)
    assert error.line == 3
    assert "task 'browse' of class Shopper is a plain function" in str(error)


@pytest.mark.parametrize("hook", ["on_start", "on_stop"])
def test_a_plain_function_hook_is_refused(tmp_path: Path, hook: str) -> None:
    path = write(tmp_path, f"""\
        from phalanx import User, task

        class Shopper(User):
            def {hook}(self):
                pass

            @task
            async def browse(self):
                pass
        """)
    error = load_error(path)
    assert str(error) == (
        f"{path}:4: {hook} of class Shopper is a plain function; {hook} must be `async def`"
    )


def test_a_plain_function_in_a_nested_taskset_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import TaskSet, User, task

        class Browse(TaskSet):
            @task
            def page(self):
                pass

        class Shopper(User):
            tasks = [Browse]
        """)
    error = load_error(path)
    assert error.line == 5
    assert "task 'page' of TaskSet Browse is a plain function" in str(error)


def test_an_async_wait_time_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import User, task

        class Shopper(User):
            async def wait_time(self):
                return 1

            @task
            async def browse(self):
                pass
        """)
    error = load_error(path)
    assert error.line == 4
    assert "wait_time of class Shopper is `async def`" in str(error)


def test_a_user_class_without_tasks_is_refused_at_its_class_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import User


        class Idle(User):
            pass
        """)
    error = load_error(path)
    assert str(error).startswith(f"{path}:4: class Idle has no tasks")


def test_a_taskset_without_tasks_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import TaskSet, User

        class Empty(TaskSet):
            pass

        class Shopper(User):
            tasks = [Empty]
        """)
    error = load_error(path)
    assert str(error).startswith(f"{path}:3: TaskSet Empty has no tasks")


def test_an_invalid_tasks_declaration_is_refused_at_the_class_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        from phalanx import User

        async def browse(user):
            pass

        class Shopper(User):
            tasks = {browse: 0}
        """)
    error = load_error(path)
    assert error.line == 6
    assert "weight must be an integer >= 1" in str(error)


def test_more_than_one_load_shape_is_refused(tmp_path: Path) -> None:
    other = "\n\nclass Other(LoadShape):\n    def tick(self):\n        return None\n"
    path = write(tmp_path, GOOD + other)
    error = load_error(path)
    assert "more than one LoadShape class (Steps, Other)" in str(error)
    assert error.line == GOOD.count("\n") + 3


def test_a_load_shape_without_tick_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    def tick(self):\n        return None\n", "    pass\n"))
    assert "LoadShape Steps does not define tick()" in str(load_error(path))


def test_a_failed_load_leaves_no_module_behind(tmp_path: Path) -> None:
    before = {name for name in sys.modules if name.startswith(MODULE_PREFIX)}
    load_error(write(tmp_path, "from phalanx import User\n\nclass Idle(User):\n    pass\n"))
    load_error(write(tmp_path, "raise KeyError('x')\n", "other.py"))
    after = {name for name in sys.modules if name.startswith(MODULE_PREFIX)}
    assert after == before


def test_select_user_classes_keeps_definition_order(tmp_path: Path) -> None:
    loaded = load_script(write(tmp_path, GOOD))
    assert select_user_classes(loaded, []) == loaded.user_classes
    assert [c.__name__ for c in select_user_classes(loaded, ["Reader", "Shopper"])] == [
        "Shopper", "Reader"
    ]
    assert [c.__name__ for c in select_user_classes(loaded, ["Reader"])] == ["Reader"]


def test_select_user_classes_lists_the_available_names_for_unknown_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    loaded = load_script(path)
    with pytest.raises(ScriptError) as info:
        select_user_classes(loaded, ["Shopper", "Buyer", "Admin"])
    assert str(info.value) == (
        f"{path}: unknown user classes Buyer, Admin; the script defines: Shopper, Reader"
    )
