# cityops — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
KAFKA := deploy/local/kafka/kafka.sh
TOPOLOGY ?= topologies/shanghai.yaml
RATE ?= 500
DURATION ?= forever
export KAFKA_PORT ?= 9092
export KAFKA_CLUSTER_PORT ?= 9192

.DEFAULT_GOAL := help
.PHONY: help prereqs setup kafka-jars kafka-up kafka-down kafka-status cluster-up cluster-down cluster-status test test-unit chaos lint format run bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

prereqs: ## Install the missing prerequisites (Python venv, Java 17+, Maven, Prometheus) with apt-get
	deploy/local/prereqs.sh

setup: $(VENV)/.installed kafka-jars ## Create the venv, install cityops[dev], fetch the Kafka jars

kafka-jars: ## Fetch the Apache Kafka jars with Maven (cached under ~/.cache/cityops)
	@$(KAFKA) fetch >/dev/null

kafka-up: kafka-jars ## Start the local Kafka broker (KRaft, 127.0.0.1:$KAFKA_PORT)
	@$(KAFKA) start

kafka-down: ## Stop the local Kafka broker
	@$(KAFKA) stop

kafka-status: ## Is the local broker running?
	@$(KAFKA) status

cluster-up: kafka-jars ## Start the local 3-node Kafka cluster (127.0.0.1:$KAFKA_CLUSTER_PORT, +2, +4)
	@$(KAFKA) cluster up

cluster-down: ## Stop the local 3-node Kafka cluster
	@$(KAFKA) cluster down

cluster-status: ## Are the cluster's three nodes running?
	@$(KAFKA) cluster status

test: setup ## Run every test: unit, integration (real broker), then the cluster group and the chaos suite
	@deploy/local/prereqs.sh --check >/dev/null || { deploy/local/prereqs.sh --check; \
	  echo "make test needs them: run 'make prereqs' (apt-get, as root or with sudo)"; exit 1; }
	$(BIN)/python -m pytest -m 'not chaos and not cluster'
	$(BIN)/python -m pytest -m 'chaos or cluster' tests/cluster tests/chaos

chaos: setup ## Only the cluster tests and the chaos suite (faults, with a report table)
	$(BIN)/python -m pytest -m 'chaos or cluster' tests/cluster tests/chaos

test-unit: setup ## Run the pure unit tests only (no broker): pipeline/, deploy/, bench/
	$(BIN)/python -m pytest tests/unit tests/deploy tests/bench

lint: setup ## ruff and mypy (writes nothing)
	$(BIN)/ruff check pipeline tests bench topologies deploy
	$(BIN)/ruff format --check pipeline tests bench topologies deploy
	$(BIN)/mypy

format: setup ## Format and autofix with ruff
	$(BIN)/ruff format pipeline tests bench topologies deploy
	$(BIN)/ruff check --fix pipeline tests bench topologies deploy

run: setup kafka-up ## Run the pipeline on the Shanghai sample with simulated city traffic
	$(BIN)/cityops demo --topology $(TOPOLOGY) --rate $(RATE) --duration $(DURATION)

bench: setup kafka-up ## Run the benchmark (results in bench/results/)
	$(BIN)/python -m bench

clean: kafka-down ## Stop the broker and remove local state (venv kept)
	rm -rf data .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -rf $${KAFKA_STATE_DIR:-$$HOME/.local/state/cityops/kafka-$(KAFKA_PORT)}
