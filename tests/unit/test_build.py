"""Compiled builds (phalanx.core.build, setup.py): the rules for compiled modules, and
that a test run really runs the build it claims to run.

scripts/test.sh runs the suite on the Python sources, then the hot-path tests
again on a compiled build (``make compiled``) with ``PHALANX_EXPECT_COMPILED=1``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

import phalanx
from phalanx.core.build import COMPILED_MODULES, build_kind, compiled_modules

ROOT = Path(__file__).resolve().parents[2]


def _classes_defined_in(name: str) -> list[type]:
    module = importlib.import_module(name)
    return [
        value for value in vars(module).values()
        if inspect.isclass(value) and value.__module__ == name
    ]


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_compiled_modules_define_no_msgspec_struct(name: str) -> None:
    # mypyc drops a Struct's class options (array_like, frozen, ...): the wire form would change.
    structs = [cls.__name__ for cls in _classes_defined_in(name) if issubclass(cls, msgspec.Struct)]
    assert structs == []


def _scope_nodes(function: ast.AST) -> list[ast.AST]:
    """The nodes of ``function``'s own scope (nested functions, lambdas and classes left out)."""
    found: list[ast.AST] = []
    pending = list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        found.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            pending.extend(ast.iter_child_nodes(node))
    return found


def except_names_of_two_types(source: str) -> list[str]:
    """``function: name`` for each name bound by ``except ... as name`` clauses of different
    exception types in one function."""
    clashes = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        types: dict[str, set[str]] = {}
        for node in _scope_nodes(function):
            if isinstance(node, ast.ExceptHandler) and node.name is not None:
                caught = ast.unparse(node.type) if node.type is not None else "BaseException"
                types.setdefault(node.name, set()).add(caught)
        clashes += [f"{function.name}: {name}" for name, seen in types.items() if len(seen) > 1]
    return clashes


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_compiled_modules_bind_no_name_to_two_exception_types(name: str) -> None:
    # mypyc gives a local one type, from its first binding: a second `except Other as exc`
    # in the same function then fails at run time with a TypeError instead of handling it.
    source = (ROOT / "src" / Path(*name.split("."))).with_suffix(".py").read_text()
    assert except_names_of_two_types(source) == []


def test_the_except_check_finds_a_clash_and_ignores_nested_scopes() -> None:
    source = (
        "def f():\n"
        "    try: pass\n"
        "    except KeyError as exc: pass\n"
        "    try: pass\n"
        "    except ValueError as exc: pass\n"
        "    def g():\n"
        "        try: pass\n"
        "        except OSError as exc: pass\n"
        "def h():\n"
        "    try: pass\n"
        "    except OSError as exc: pass\n"
        "    try: pass\n"
        "    except OSError as exc: pass\n"
    )
    assert except_names_of_two_types(source) == ["f: exc"]


def test_no_public_class_lives_in_a_compiled_module() -> None:
    # Scripts subclass the public classes (User, TaskSet, LoadShape); interpreted code
    # cannot subclass a compiled class. (phalanx.http's classes are compiled, and its
    # docstring says they are final.)
    public = {name: getattr(phalanx, name) for name in phalanx.__all__}
    compiled = {
        name for name, value in public.items()
        if getattr(value, "__module__", None) in COMPILED_MODULES
    }
    assert compiled == set()


def test_the_run_uses_the_build_it_expects() -> None:
    if os.environ.get("PHALANX_EXPECT_COMPILED") == "1":
        assert compiled_modules() == COMPILED_MODULES
        assert build_kind() == "compiled"
    else:
        # A compiled module here would mean a stale build shadows the sources under test.
        assert compiled_modules() == ()
        assert build_kind() == "pure Python"


def test_the_source_tree_holds_no_compiled_module() -> None:
    # An extension module next to its source wins the import and silently runs old code
    # (an in-place or editable compiled build): compiled builds belong in build/compiled.
    stale = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "src").rglob("*")
        if path.suffix in (".so", ".pyd")
    ]
    assert stale == [], "remove these (stale compiled modules shadow the sources): " + ", ".join(
        stale
    )


@pytest.mark.parametrize(
    ("command", "setting", "refusal"),
    [
        ("--name", "yes", "PHALANX_COMPILE must be 0 or 1, not 'yes'"),
        ("develop", "1", "PHALANX_COMPILE=1 cannot be an editable install"),
    ],
)
def test_setup_refuses_what_it_cannot_build(command: str, setting: str, refusal: str) -> None:
    # Both are refused before setuptools runs: nothing is written.
    result = subprocess.run(
        [sys.executable, "setup.py", command],
        cwd=ROOT,
        env={**os.environ, "PHALANX_COMPILE": setting},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert refusal in result.stderr


def test_build_kind_names_a_partial_build(monkeypatch: pytest.MonkeyPatch) -> None:
    import phalanx.core.build as build

    monkeypatch.setattr(build, "compiled_modules", lambda: COMPILED_MODULES[:1])
    assert build.build_kind() == f"partly compiled ({COMPILED_MODULES[0]})"
    monkeypatch.setattr(build, "compiled_modules", lambda: COMPILED_MODULES)
    assert build.build_kind() == "compiled"
