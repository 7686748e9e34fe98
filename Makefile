# devolens: `make demo` and `make test` work on a fresh machine (they install first when needed).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARCH := $(shell uname -m)
# torch + torchvision pairs that install from this machine's local disk (see ../shared/DESIGN.md); ARM is
# aarch64 on Linux, arm64 on macOS. Another pair: make install TORCH_PIN="torch==X torchvision==Y";
# TORCH_PIN= (empty) lets pip choose from pyproject.toml's ranges. TORCH_INDEX=URL takes the pair from another
# index, e.g. https://download.pytorch.org/whl/cu126 for GPUs older than a T4 or drivers older than 580 (README,
# "On a GPU"; in a new .venv: the installed pair is kept otherwise).
TORCH_INDEX ?=
ifneq ($(filter aarch64 arm64,$(ARCH)),)
TORCH_PIN ?= torch==2.9.1 torchvision==0.24.1
else
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
endif
PYTEST_ARGS ?=

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	$(if $(strip $(TORCH_PIN)),$(BIN)/pip install -q $(TORCH_PIN)$(if $(strip $(TORCH_INDEX)), --index-url $(TORCH_INDEX)),@:)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/devolens demo --out demo-output

# Bytecode: where PYTHONDONTWRITEBYTECODE is set (as on these machines), every process compiled devolens's sources
# again (0.4-1 s for each of the suite's command-line subprocesses on an AVX2-only EPYC) and pytest rewrote every
# test module's asserts again on each worker and run (about 30 s a worker there): compiled once here, and pytest
# keeps its rewritten modules (in __pycache__, git-ignored).
test: install
	$(BIN)/python -m compileall -q src
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m compileall -q src
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

bench: install
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf demo-output build dist .pytest_cache
