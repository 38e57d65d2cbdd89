# Shortcuts; the scripts under scripts/ are the source of truth.
.PHONY: setup demo test lint test-slow test-gpu test-kernel-build sim-up sim-down bench

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

# The RT kernel source path end to end (rt_kernel_build, qemu-system-aarch64): CPU-heavy.
test-kernel-build:
	apt-get install -y --no-install-recommends linux-source-6.12 gcc-aarch64-linux-gnu \
	  libc6-dev-arm64-cross qemu-system-arm flex bison bc make xz-utils
	.venv/bin/pytest -m slow tests/e2e/test_rt_kernel_build.py

sim-up:
	.venv/bin/jetson-rt sim up

sim-down:
	.venv/bin/jetson-rt sim down

bench:
	.venv/bin/python benchmarks/sim_fleet.py
