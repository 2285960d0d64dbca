# One command each: `make demo` runs a real load test, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_PORT ?= 0

.PHONY: demo test lint typecheck unit venv-dev venv-run compiled lock bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime dependencies only, pinned and hash-checked.
$(VENV)/.run-stamp: requirements/runtime.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/runtime.lock
	PHALANX_COMPILE=0 $(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Runtime + test tools, pinned and hash-checked.
$(VENV)/.dev-stamp: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.lock
	PHALANX_COMPILE=0 $(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(VENV)/.run-stamp $@

venv-run: $(VENV)/.run-stamp
venv-dev: $(VENV)/.dev-stamp

# The compiled build (PHALANX_COMPILE=1, see setup.py): the hot-path modules of
# src/phalanx/core/build.py compiled by mypyc, as a wheel in build/compiled-wheel and
# unpacked into build/compiled. Never in src/: an extension module next to its source
# would shadow later edits. Rebuilt when any source changes (mypyc reads their types), and
# when a module is added, renamed or deleted (the directories' times change).
# setuptools' own build/lib.*, build/bdist.* and build/temp.* go first: the wheel would
# otherwise keep files from earlier builds (a deleted module, an old extension). The
# stamp takes the time the build started, so an edit saved during the build is newer.
COMPILED := build/compiled/.stamp
$(COMPILED): $(shell find src/phalanx -name '*.py' -o -type d -not -name __pycache__) setup.py \
		pyproject.toml $(VENV)/.dev-stamp
	rm -rf build/compiled build/compiled-wheel build/lib.* build/bdist.* build/temp.*
	mkdir -p build && touch build/.compiled-start
	PHALANX_COMPILE=1 $(BIN)/pip wheel --quiet --disable-pip-version-check \
		--no-build-isolation --no-deps -w build/compiled-wheel .
	$(BIN)/python -m zipfile -e build/compiled-wheel/phalanx-*.whl build/compiled
	touch -r build/.compiled-start $@
compiled: $(COMPILED)

demo: venv-run
	DEMO_PORT=$(DEMO_PORT) bash scripts/demo.sh

test: venv-dev compiled
	bash scripts/test.sh

lint: venv-dev
	$(BIN)/ruff check src tests bench examples

typecheck: venv-dev
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv-dev
	$(BIN)/pytest tests/unit -q

# Re-pin after editing requirements/*.in (needs uv: pip install uv).
lock:
	uv pip compile --python-version 3.11 --generate-hashes --no-header -q requirements/runtime.in -o requirements/runtime.lock
	uv pip compile --python-version 3.11 --generate-hashes --no-header -q requirements/runtime.in requirements/dev.in -o requirements/dev.lock

bench:
	bash bench/run.sh

clean:
	rm -rf $(VENV) build .mypy_cache .pytest_cache .ruff_cache .import_linter_cache
