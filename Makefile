# The README's two commands: `make demo` (the main job) and `make test`.
# Both create or reuse .venv; torch is pinned first so pip never pulls a CUDA build.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   := torch==2.13.0
# Dedalus (rayleigh_benard) compiles against FFTW and OpenMPI; it is built whenever their
# Debian packages are present (see README), and its tests skip otherwise.
MPI_PATH ?= /usr/lib/x86_64-linux-gnu/openmpi
HAVE_DEDALUS_LIBS := $(shell test -e /usr/include/fftw3-mpi.h && test -e $(MPI_PATH)/include/mpi.h && echo yes)
comma   := ,
EXTRAS  := $(if $(HAVE_DEDALUS_LIBS),dev$(comma)dedalus,dev)
STAMP   := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
DEMO_OUT ?= runs/demo

.PHONY: venv demo test test-slow lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	@echo "installing physrep[$(EXTRAS)]$(if $(HAVE_DEDALUS_LIBS),, (Dedalus skipped: FFTW/OpenMPI dev packages not found))"
	MPI_PATH=$(MPI_PATH) $(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: venv
	$(BIN)/physrep demo --out $(DEMO_OUT)

test: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -m "not slow"

# The `paper` preset at The Well's real shapes (tests/test_paper_shapes.py): ~10 min, ~8 GB RAM.
test-slow: venv
	$(BIN)/python -m pytest -m slow

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: venv
	$(BIN)/python benchmarks/window_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
