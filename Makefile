# Entry points. `make demo` sets up and runs the study end to end on the embedded default;
# `make test` runs the test suite (what .ci/run calls).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench model

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[cpu,dev]'
	$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	touch $(STAMP)

demo: setup
	$(PY) -m pipeline.demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m bench.run

model: setup
	$(PY) -m toyworld.train
