# Two entry points for a fresh clone: `make demo` and `make test`. Each builds .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
PYTEST_ARGS ?=

.PHONY: venv demo test test-all bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/scidl demo --out runs/demo

test: $(STAMP)
	SCIDL_DATA=$${SCIDL_DATA:-$(CURDIR)/../shared/data} $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP)
	SCIDL_DATA=$${SCIDL_DATA:-$(CURDIR)/../shared/data} $(BIN)/python -m pytest $(PYTEST_ARGS)

# The side-by-side benchmarks also need the peer libraries (the `bench` extra: torchdiffeq,
# deepxde, neuraloperator), installed against the same pinned torch.
$(BENCH_STAMP): $(STAMP)
	$(PIP_INSTALL) -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
