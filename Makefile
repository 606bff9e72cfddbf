# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test soak schemas install clean

$(STAMP): pyproject.toml $(wildcard services/*/__init__.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/porting up

test: $(STAMP)
	$(BIN)/python -m pytest

soak: $(STAMP)
	$(BIN)/python -m pytest -m soak

schemas: $(STAMP)
	$(BIN)/porting schemas export

clean:
	rm -rf $(VENV) .porting
