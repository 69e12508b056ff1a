# The two commands of the README: `make run` (the product) and `make test` (the whole test suite).
.PHONY: run test lint install install-dev

run: install
	.venv/bin/assistant serve

test: install-dev
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q -rs

install:
	scripts/install.sh

install-dev:
	scripts/install.sh dev

lint: install-dev
	.venv/bin/ruff check .
