# `make test` and `make demo` set up a fresh machine themselves: Debian packages, then the venv.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := zookeeper bird2 bind9 dnsutils iputils-ping nftables haproxy nginx iproute2 procps postgresql-15 openssl prometheus systemd curl
PYTEST_ARGS ?=

.PHONY: system venv test lint demo clean

system:
	@bash scripts/install-system.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: system venv
	$(PY) -m pytest -q -p no:cacheprovider --cov=failover --cov-branch --cov-report= $(PYTEST_ARGS)
	$(PY) -m coverage report --include='failover/core/*' --fail-under=90
	$(PY) -m coverage report | tail -n 1

lint: venv
	$(PY) -m ruff check failover tests benchmarks
	$(PY) -m ruff format --check failover tests benchmarks scripts
	$(PY) -m mypy

demo: system venv
	$(VENV)/bin/failover demo

clean:
	rm -rf $(VENV) .coverage .pytest_cache .mypy_cache .ruff_cache
