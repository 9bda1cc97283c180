# The two commands a newcomer runs first: `make serve` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Start the server with a demo tenant, agent and widget (embedded PostgreSQL unless DATABASE_URL is set).
serve: $(STAMP)
	$(BIN)/curbe-chat serve --demo $(ARGS)

## Run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check engine web storage tests
	$(BIN)/ruff format --check engine web storage tests
	$(BIN)/mypy --strict engine web storage

clean:
	rm -rf $(VENV) .curbe-data
