# Shortcuts; the scripts under scripts/ are the source of truth.
.PHONY: setup demo test lint test-slow test-gpu sim-up sim-down bench

setup:
	./scripts/setup.sh

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

lint:
	.venv/bin/ruff check runtime tests benchmarks collections
	.venv/bin/mypy
	.venv/bin/yamllint --strict .
	.venv/bin/ansible-lint --offline -q

test-slow:
	.venv/bin/pytest -m slow

test-gpu:
	.venv/bin/pytest -m gpu

sim-up:
	.venv/bin/jetson-rt sim up

sim-down:
	.venv/bin/jetson-rt sim down

bench:
	.venv/bin/python benchmarks/sim_fleet.py
