# The two commands a newcomer runs first: `make serve` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint install clean qa bench chaos docker-image docker-test

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

## Run the brief's 8 QA cases in headless Chromium and record them (artifacts/qa/: qa-cases.mp4, report.md, frames).
qa: $(STAMP)
	@command -v ffmpeg >/dev/null 2>&1 || { echo "ffmpeg is missing: apt-get install -y ffmpeg"; exit 2; }
	$(BIN)/python -m qa.run $(QA_ARGS)

## Curbe Chat against the floors of its stack (quart-trio, bare Trio, websockets), as ratios.
## BENCH_ARGS=--quick runs every path with tiny numbers; the full run takes about 15 minutes.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## The fault suite: kill -9 under load, the database cut off, sockets dropped, generated requests;
## prints its figures (artifacts/chaos/chaos.json). CHAOS_ARGS=--quick is CI's short mode.
chaos: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
	  $(BIN)/python -m chaos $(CHAOS_ARGS)

## Build the server image curbe-chat:latest (docker/build: wheelhouse on the host, then docker build).
docker-image: $(STAMP)
	PYTHON=$(BIN)/python docker/build $(DOCKER_TAG)

## Build the image and run it for real: two replicas, a chat across them, SIGTERM; the proxy; compose.
## Starts a Docker daemon if none runs (root, Debian's docker.io); skips with the reason otherwise.
docker-test: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
	  $(BIN)/python -m pytest -m docker tests/docker $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check engine web storage tests qa bench chaos
	$(BIN)/ruff format --check engine web storage tests qa bench chaos
	$(BIN)/mypy --strict engine web storage qa bench chaos

clean:
	rm -rf $(VENV) .curbe-data
