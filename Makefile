# Two set-up commands work on a fresh machine: `make demo` and `make test`.
# Both create the project's own virtual environment (.venv) on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m egan_jax.demo --out runs/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check egan_jax tests bench experiments
	$(VENV)/bin/ruff format --check egan_jax tests bench experiments

format: $(STAMP)
	$(VENV)/bin/ruff format egan_jax tests bench experiments
	$(VENV)/bin/ruff check --fix egan_jax tests bench experiments

# The whole suite, slow end-to-end tests included (this is what CI runs).
test: lint
	$(PY) -m pytest -n 2 --dist loadfile -q

# The fast local subset.
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q -m "not slow"

bench: $(STAMP)
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
