# Two commands set up a fresh machine (only Python 3.11+ and make needed):
#   make demo   builds .venv from the lock file and runs the pipeline on the bundled sample
#   make test   builds .venv from the lock file and runs the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kg demo --out demo-out

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

# Re-pin every dependency (run after editing pyproject.toml's dependencies).
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/python -m pip install --quiet ".[dev,bench]"
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^kg-toolkit' > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) demo-out .pytest_cache
