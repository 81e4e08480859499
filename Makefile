# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Both create the virtualenv when it is absent and reuse it (and pip's cache) when present.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.advtui-installed

.PHONY: setup demo test bench clean-venv

$(PY):
	python3 -m venv $(VENV)

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The default smoke pipeline (E1-E4) through DVC, then the report. A second run does nothing.
demo: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" dvc repro
	$(VENV)/bin/advtui report

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) bench/throughput.py

clean-venv:
	rm -rf $(VENV)
