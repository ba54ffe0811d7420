# napari-medseg: `make run` opens napari with the sample case and the dock,
# `make test` runs the whole suite headless under Xvfb. Both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.medseg-installed
# The suite runs on two pytest-xdist workers, one compute thread each (2-core CI);
# work stealing evens out their ends (a few tests take 10-20 s).
PYTEST_ARGS ?=

.PHONY: setup system-deps run test screenshot lint clean

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/ensure_system_deps.sh

# Torch first, pinned, so pip takes the local CPU wheel; every later install
# goes through constraints.txt so no extra can swap torch for a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[testing]"
	@touch $(STAMP)

run: setup
	@bash scripts/run_viewer.sh $(PY)

screenshot: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) scripts/readme_screenshot.py docs/screenshot.png

test: setup
	OMP_NUM_THREADS=1 xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m pytest -n 2 --dist worksteal $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check napari_medseg tests scripts bench
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
