# memloc's entry points. `make book` and `make test` set everything up themselves on a fresh
# machine: a local virtual environment (.venv) with memloc and its pinned dependencies.
PROFILE ?= cpu
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.memloc-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv data book test test-paper-toy lint format system-deps clean-book

help:
	@echo "make book [PROFILE=quick|cpu|paper|<profile>-toy] [EXECUTOR=slurm] [KEEP_GOING=1] [BUNDLE=url|path]"
	@echo "                                      set up, get data, train, run notebooks, build the book"
	@echo "                                      (BUNDLE: import a results bundle first, train only what it lacks)"
	@echo "make test                             lint and run the test suite (quick profile)"
	@echo "make test-paper-toy                   the paper profile's workflow at toy sizes (4-6 min)"
	@echo "make data                             get Fashion-MNIST (download or Debian package)"

# The environment is rebuilt when the pins change.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[book,test,timm]'
	$(PY) -m ipykernel install --sys-prefix --name memloc --display-name "Python (memloc)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

# Fashion-MNIST: from the data root, the Debian package's files, or a download; offline on
# Debian as root, the package `dataset-fashion-mnist` provides the four IDX files.
data: venv
	@$(PY) -m memloc.data prepare fashion-mnist 2>/dev/null || { \
	  if command -v apt-get >/dev/null; then \
	    echo "Installing the Debian package dataset-fashion-mnist"; \
	    $(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	      { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; }; \
	  fi; \
	  $(PY) -m memloc.data prepare fashion-mnist; }

# Headless Chromium for the browser test of the built book (skipped where it cannot be had).
system-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if command -v apt-get >/dev/null; then \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	  else echo "no apt-get: install Chromium and ChromeDriver for the browser test"; fi; } || true

# Every profile needs Fashion-MNIST: the quick book's transfer results use it as their second
# data set (digits' partner). The build is the Snakemake workflow in workflow/Snakefile, on all
# cores; EXECUTOR=slurm submits its jobs to a cluster (profiles/slurm/config.yaml);
# KEEP_GOING=1 runs the other notebooks when one fails. BUNDLE=<url or path> imports a results
# bundle (`memloc bundle export`) into the cache first: Snakemake then finds those encoders'
# weights and trains none of them; BUNDLE_SHA256=<hash> also pins the archive itself.
book: venv data
	$(if $(BUNDLE),$(PY) -m memloc.cli bundle import '$(BUNDLE)' $(if $(BUNDLE_SHA256),--sha256 $(BUNDLE_SHA256)))
	$(PY) -m memloc.book --profile $(PROFILE) --cores all \
	  $(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(KEEP_GOING),--keep-going)

lint: venv
	$(VENV)/bin/ruff check memloc tests benchmarks notebooks
	$(VENV)/bin/ruff format --check memloc tests benchmarks notebooks

format: venv
	$(VENV)/bin/ruff format memloc tests benchmarks notebooks
	$(VENV)/bin/ruff check --fix memloc tests benchmarks notebooks

# The tests read the real Fashion-MNIST files, so a fresh machine gets them first.
test: venv system-deps data lint
	$(PY) -m pytest -q

# The paper profile's whole workflow at toy sizes on stand-in CIFAR-10, SVHN and STL10 (4 to 6
# minutes on 2 cores; not in `make test`, which must stay under 15 minutes).
test-paper-toy: venv
	$(PY) -m pytest -q -m paper_toy

clean-book:
	rm -rf book/_build book/results .snakemake
