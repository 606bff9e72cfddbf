# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run KAFKA_PORT=39092 POSTGRES_PORT=35433 HTTP_PORT=38080 SMTP_PORT=31025` when the defaults
# are taken (this repo's docker-compose publishes 9092, 5433, 8080 to 8082 and 1025); `porting`
# commands find the stack wherever it listens.
KAFKA_PORT ?= 9092
POSTGRES_PORT ?= 5433
HTTP_PORT ?= 8080
SMTP_PORT ?= 1025

.PHONY: run test soak bench schemas install clean

$(STAMP): pyproject.toml $(wildcard services/*/__init__.py)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/porting up --kafka-port $(KAFKA_PORT) --postgres-port $(POSTGRES_PORT) --http-port $(HTTP_PORT) \
		--smtp-port $(SMTP_PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

soak: $(STAMP)
	$(BIN)/python -m pytest -m soak

bench: $(STAMP)
	@$(BIN)/porting bench

schemas: $(STAMP)
	$(BIN)/porting schemas export

clean:
	rm -rf $(VENV) .porting
