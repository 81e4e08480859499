# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Both create the virtualenv when it is absent and reuse it (and pip's cache) when present.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.advtui-installed

.PHONY: setup demo test bench clean-venv

$(PY):
	python3 -m venv $(VENV)

# The tested versions of every dependency: pip resolves them without backtracking (unpinned, a fresh
# resolve spends many minutes trying old dvc/dulwich releases). `make CONSTRAINTS= setup` resolves freely.
CONSTRAINTS ?= constraints.txt

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PY) -m pip install -e '.[dev]' $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
	touch $(STAMP)

setup: $(STAMP)

# The default smoke pipeline (E1-E6) through DVC (advtui repro: dvc repro with the profile's jobs stages at
# once), then the report. A second run does nothing.
demo: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" advtui repro
	$(VENV)/bin/advtui report

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) bench/throughput.py

clean-venv:
	rm -rf $(VENV)
