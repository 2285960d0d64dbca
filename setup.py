"""Build hook: a compiled build when ``PHALANX_COMPILE=1``, else pure Python.

All metadata is in pyproject.toml. ``PHALANX_COMPILE=1`` compiles the hot-path
modules listed in ``src/phalanx/core/build.py`` with mypyc; it needs mypy
(pinned in requirements/dev.lock) and a C compiler in the build environment,
so build it with ``--no-build-isolation`` from a venv holding the dev lock
(``make compiled`` does). Without the variable nothing is compiled. A
requested compiled build that cannot compile fails: it never falls back to
pure Python silently.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
COMPILE = os.environ.get("PHALANX_COMPILE", "0")

if COMPILE not in ("0", "1"):
    raise SystemExit(f"PHALANX_COMPILE must be 0 or 1, not {COMPILE!r}")

# The build backend also runs this file just to write metadata: mypyc (tens of seconds)
# is only needed when something is built.
METADATA_ONLY = not {"egg_info", "dist_info"}.isdisjoint(sys.argv[1:])
# An editable build writes extension modules into src/, where they would shadow the
# sources being edited: compiled builds are wheels (see `make compiled`).
EDITABLE = not {"editable_wheel", "develop"}.isdisjoint(sys.argv[1:])

if COMPILE == "1" and EDITABLE:
    raise SystemExit(
        "PHALANX_COMPILE=1 cannot be an editable install (compiled modules in src/ would "
        "shadow the sources): build a wheel instead (`make compiled`)"
    )

ext_modules = []
if COMPILE == "1" and not METADATA_ONLY:
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit(
            "PHALANX_COMPILE=1 needs mypy (mypyc) in the build environment: install "
            "requirements/dev.lock and build with --no-build-isolation (see `make compiled`)"
        ) from None
    build_info = runpy.run_path(str(HERE / "src" / "phalanx" / "core" / "build.py"))
    ext_modules = mypycify(
        [
            "src/" + name.replace(".", "/") + ".py"
            for name in build_info["COMPILED_MODULES"]
        ],
        opt_level="3",
        group_name="phalanx_compiled",
    )

setup(ext_modules=ext_modules)
