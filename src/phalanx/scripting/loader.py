"""Loading a user script: from a path to checked User classes and a LoadShape.

:func:`load_script` reads the file once, hashes those exact bytes (sha256,
for the audit trail), compiles them and executes them as a fresh module named
``phalanx_script_<uuid>``; the name is unique per load, so two scripts (or two
loads of one script) never share a module. The module stays registered in
``sys.modules`` under that unique name after a successful load, because
libraries resolve a class's annotations through ``sys.modules[cls.__module__]``
(dataclasses, msgspec, pickle); a failed load removes it. The script's
directory is put first on ``sys.path`` (as with ``python script.py``) so it
can import modules next to it, also lazily from a task at run time; it stays
there after a successful load (a process loads its script once) and is
removed after a failed one.

Every problem is a :class:`~phalanx.core.errors.ScriptError` with a single
paragraph naming the file and line, never a traceback:

- the path does not exist, is not a file, or does not end in ``.py``;
- a syntax error (line and the parser's message);
- an exception while the module executes (type, message, and the innermost
  line of the script on the way);
- no concrete User class;
- a task, ``on_start`` or ``on_stop`` that is a plain ``def`` (its def line),
  an ``async def wait_time``;
- a User or TaskSet class with no tasks, or an invalid task declaration;
- more than one concrete LoadShape, or one without ``tick()``.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import linecache
import sys
import types
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from phalanx.core.errors import ScriptError
from phalanx.scripting.reporting import describe_exception
from phalanx.scripting.shape import LoadShape
from phalanx.scripting.task import declared_tasks, is_plain_function
from phalanx.scripting.taskset import TaskSet
from phalanx.scripting.user import User

MODULE_PREFIX = "phalanx_script_"


@dataclass(frozen=True, slots=True)
class LoadedScript:
    """A loaded, checked script."""

    path: Path
    sha256: str  # hex digest of the file's bytes, as executed
    user_classes: tuple[type[User], ...]  # concrete, in definition (binding) order
    shape_class: type[LoadShape] | None


def load_script(path: str | Path) -> LoadedScript:
    """Load and check the script at ``path``; raises ``ScriptError`` (see the module docstring)."""
    script = Path(path)
    shown = str(script)
    if not script.exists():
        raise ScriptError("file not found", path=shown)
    if not script.is_file():
        raise ScriptError("not a file; give the path of a .py script", path=shown)
    if script.suffix != ".py":
        raise ScriptError("not a .py file; phalanx scripts are Python files", path=shown)
    try:
        source = script.read_bytes()
    except OSError as exc:
        raise ScriptError(f"cannot read the file: {exc.strerror or exc}", path=shown) from None
    digest = hashlib.sha256(source).hexdigest()
    code = _compile(source, shown)
    module = _execute(code, script, shown)
    try:
        checker = _Checker(module, source, shown)
        users, shape = checker.collect()
    except BaseException:
        sys.modules.pop(module.__name__, None)
        raise
    return LoadedScript(path=script, sha256=digest, user_classes=users, shape_class=shape)


def select_user_classes(loaded: LoadedScript, names: Sequence[str]) -> tuple[type[User], ...]:
    """The user classes named in ``names`` (all when empty), in definition order."""
    wanted = set(names)
    if not wanted:
        return loaded.user_classes
    available = [cls.__name__ for cls in loaded.user_classes]
    unknown = [name for name in dict.fromkeys(names) if name not in available]
    if unknown:
        plural = "es" if len(unknown) > 1 else ""
        raise ScriptError(
            f"unknown user class{plural} {', '.join(unknown)}; "
            f"the script defines: {', '.join(available)}",
            path=str(loaded.path),
        )
    return tuple(cls for cls in loaded.user_classes if cls.__name__ in wanted)


def _compile(source: bytes, shown: str) -> types.CodeType:
    try:
        return compile(source, shown, "exec", dont_inherit=True)
    except SyntaxError as exc:
        text = (exc.text or "").strip()
        near = f" in `{text}`" if text else ""
        raise ScriptError(f"syntax error: {exc.msg}{near}", path=shown, line=exc.lineno) from None
    except ValueError as exc:  # e.g. null bytes in the source
        raise ScriptError(f"cannot compile the script: {exc}", path=shown) from None


def _execute(code: types.CodeType, script: Path, shown: str) -> types.ModuleType:
    name = f"{MODULE_PREFIX}{uuid.uuid4().hex}"
    module = types.ModuleType(name)
    module.__file__ = str(script.resolve())
    directory = str(script.resolve().parent)
    sys.modules[name] = module
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the user's script is the purpose
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        if added and directory in sys.path:
            sys.path.remove(directory)
        raise _import_error(exc, shown) from None
    return module


def _import_error(exc: BaseException, shown: str) -> ScriptError:
    frames: list[tuple[str, int]] = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    in_script = [line for filename, line in frames if filename == shown]
    line = in_script[-1] if in_script else None
    if isinstance(exc, SystemExit):
        what = f"the script called sys.exit({exc.code!r}) while being imported"
    else:
        message = describe_exception(exc)[1].strip()
        what = f"error while importing the script: {type(exc).__name__}: {message}".rstrip(": ")
    if frames and frames[-1][0] != shown and line is not None:
        what += f" (raised in {frames[-1][0]}:{frames[-1][1]})"
    return ScriptError(what, path=shown, line=line)


class _Checker:
    """Finds the script's classes and checks them; the first problem raises."""

    def __init__(self, module: types.ModuleType, source: bytes, shown: str) -> None:
        self._module = module
        self._shown = shown
        self._lines = source.decode("utf-8", errors="replace").splitlines()
        self._class_lines: dict[str, int] | None = None
        self._checked: set[type] = set()

    def collect(self) -> tuple[tuple[type[User], ...], type[LoadShape] | None]:
        users: list[type[User]] = []
        shapes: list[type[LoadShape]] = []
        for value in list(vars(self._module).values()):
            if not isinstance(value, type) or getattr(value, "abstract", True) is not False:
                continue
            if issubclass(value, User) and value not in users:
                users.append(value)
            elif issubclass(value, LoadShape) and value not in shapes:
                shapes.append(value)
        if not users:
            raise ScriptError(
                "no User class found: define a class that subclasses phalanx.User or "
                "phalanx.HttpUser (classes with `abstract = True` are skipped)",
                path=self._shown,
            )
        for cls in users:
            self._check_class(cls)
        seen: dict[str, type[User]] = {}
        for cls in users:
            if cls.__name__ in seen:
                raise self._class_error(
                    cls,
                    f"two User classes are named {cls.__name__}: class names identify users in "
                    "the stats, the CLI and the distributed protocol, so they must be unique",
                )
            seen[cls.__name__] = cls
        return tuple(users), self._check_shapes(shapes)

    def _check_shapes(self, shapes: list[type[LoadShape]]) -> type[LoadShape] | None:
        if not shapes:
            return None
        if len(shapes) > 1:
            names = ", ".join(cls.__name__ for cls in shapes)
            raise self._class_error(
                shapes[1],
                f"more than one LoadShape class ({names}); keep one, or mark the others "
                "`abstract = True`",
            )
        shape = shapes[0]
        tick = inspect.getattr_static(shape, "tick")
        if tick is LoadShape.__dict__["tick"]:
            raise self._class_error(shape, f"LoadShape {shape.__name__} does not define tick()")
        if inspect.iscoroutinefunction(tick):
            raise self._function_error(
                tick, f"tick() of {shape.__name__} is `async def`; it must be a plain `def`"
            )
        return shape

    def _check_class(self, cls: type) -> None:
        if cls in self._checked:
            return
        self._checked.add(cls)
        kind = "TaskSet" if issubclass(cls, TaskSet) else "class"
        for hook in ("on_start", "on_stop"):
            function = inspect.getattr_static(cls, hook, None)
            if is_plain_function(function):
                raise self._function_error(
                    function,
                    f"{hook} of {kind} {cls.__name__} is a plain function; "
                    f"{hook} must be `async def`",
                )
        wait_time = inspect.getattr_static(cls, "wait_time", None)
        if inspect.iscoroutinefunction(wait_time):
            raise self._function_error(
                wait_time,
                f"wait_time of {kind} {cls.__name__} is `async def`; it must be a plain "
                "function returning seconds",
            )
        try:
            declared = declared_tasks(cls)
        except (TypeError, ValueError) as exc:
            raise self._class_error(cls, str(exc)) from None
        if not declared:
            raise self._class_error(
                cls,
                f"{kind} {cls.__name__} has no tasks: decorate `async def` methods with @task "
                "or set `tasks = [...]`",
            )
        for target, _weight in declared:
            if is_plain_function(target):
                raise self._function_error(
                    target,
                    f"task {getattr(target, '__name__', '?')!r} of {kind} {cls.__name__} "
                    "is a plain function; "
                    "tasks must be `async def`",
                )
            if isinstance(target, type) and issubclass(target, TaskSet):
                self._check_class(target)
        if not issubclass(cls, TaskSet):
            self._compile(cls)

    def _compile(self, cls: type) -> None:
        from phalanx.scripting.task import compile_tasks

        try:
            compile_tasks(cls)
        except (TypeError, ValueError) as exc:
            raise self._class_error(cls, str(exc)) from None

    def _function_error(self, function: object, message: str) -> ScriptError:
        code = getattr(function, "__code__", None)
        if not isinstance(code, types.CodeType):
            return ScriptError(message, path=self._shown)
        filename = code.co_filename
        line = code.co_firstlineno
        lines = self._lines if filename == self._shown else None
        for number in range(line, line + 50):  # skip decorators down to the `def` line
            text = (
                lines[number - 1] if lines is not None and number <= len(lines)
                else linecache.getline(filename, number)
            ).lstrip()
            if text.startswith(("def ", "async def ")):
                line = number
                break
        return ScriptError(message, path=filename, line=line)

    def _class_error(self, cls: type, message: str) -> ScriptError:
        """A ScriptError located at the ``class`` statement of ``cls``."""
        if cls.__module__ != self._module.__name__:
            try:
                return ScriptError(
                    message, path=inspect.getfile(cls), line=inspect.getsourcelines(cls)[1]
                )
            except (OSError, TypeError):
                return ScriptError(message, path=self._shown)
        if self._class_lines is None:
            self._class_lines = _class_definitions("\n".join(self._lines))
        return ScriptError(message, path=self._shown, line=self._class_lines.get(cls.__qualname__))


def _class_definitions(source: str) -> dict[str, int]:
    """``qualname -> line of the `class` keyword`` for every class in ``source``."""
    lines: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                qualname = f"{prefix}{child.name}"
                lines.setdefault(qualname, child.lineno)
                visit(child, f"{qualname}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, f"{prefix}{child.name}.<locals>.")
            else:
                visit(child, prefix)

    try:
        visit(ast.parse(source), "")
    except SyntaxError:
        return {}
    return lines
