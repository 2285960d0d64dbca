"""Compiled builds: which modules mypyc compiles, and which ones this process runs compiled.

phalanx is pure Python. A *compiled build* (``make compiled``, or
``PHALANX_COMPILE=1 pip install --no-build-isolation .``; see ``setup.py``)
also compiles the modules of
:data:`COMPILED_MODULES`, the per-request hot path, into C extensions with
mypyc; every other module stays Python. The Python sources are the
reference: a compiled module must behave like its source, which
``scripts/test.sh`` checks by running the tests of these modules (and the
suites around them) against a compiled build as well. A compiled function
enforces its annotations with mypyc's own ``TypeError``. Where scripts
commonly hand in values of other types (request options, header names and
values, ``failure()`` messages, cookie flags, what ``wait_time()`` returns),
the code reads them as ``object`` and checks or converts them itself, the
same in both builds. Elsewhere a wrong type (``client.get(123)``) fails in
both builds, with mypyc's message in a compiled one.

Rules for a module in :data:`COMPILED_MODULES` (``tests/unit/test_build.py``
pins the first three):

- it defines no msgspec ``Struct``: mypyc drops the class options
  (``array_like``, ``frozen``, ...), which would change a wire form;
- it defines no class that scripts subclass (``User``, ``TaskSet``): a
  compiled class cannot be subclassed by interpreted code;
- no function binds one name in ``except`` clauses of different exception
  types: mypyc gives a local one type, and the second clause would raise a
  ``TypeError`` instead of handling its exception;
- it returns no function that a class is meant to bind as a method (a
  compiled closure is not a descriptor);
- nothing replaces its globals or methods at run time (compiled code binds
  them when it is built).

This module must import nothing but the standard library: ``setup.py`` reads
:data:`COMPILED_MODULES` from it before phalanx's dependencies exist.
"""

from __future__ import annotations

import importlib
import importlib.machinery
from typing import Final

__all__ = ["COMPILED_MODULES", "build_kind", "compiled_modules"]

COMPILED_MODULES: Final = (
    "phalanx.http.connection",
    "phalanx.http.cookies",
    "phalanx.http.decoding",
    "phalanx.http.encoding",
    "phalanx.http.headers",
    "phalanx.http.naming",
    "phalanx.http.options",
    "phalanx.http.pool",
    "phalanx.http.redirects",
    "phalanx.http.response",
    "phalanx.http.session",
    "phalanx.http.targets",
    "phalanx.http.url",
    "phalanx.scripting.runloop",
    "phalanx.stats.histogram",
    "phalanx.stats.recorder",
)
"""The modules a compiled build compiles: what every request runs through (the user
task loop, the HTTP client below ``HttpSession`` with its URLs, headers, cookies and
bodies, the stats recorder and its histogram). Not :mod:`phalanx.scripting.wait_time`:
its wait times must stay plain functions, which a class binds as methods."""


def compiled_modules() -> tuple[str, ...]:
    """The modules of :data:`COMPILED_MODULES` that this process runs compiled.

    Imports them: a module is compiled when it was loaded from an extension
    module file rather than from Python source.
    """
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return tuple(
        name
        for name in COMPILED_MODULES
        if str(getattr(importlib.import_module(name), "__file__", "")).endswith(suffixes)
    )


def build_kind() -> str:
    """``"compiled"``, ``"pure Python"``, or ``"partly compiled (<modules>)"``."""
    compiled = compiled_modules()
    if not compiled:
        return "pure Python"
    if len(compiled) == len(COMPILED_MODULES):
        return "compiled"
    return f"partly compiled ({', '.join(compiled)})"
