# Xueliang Gateway. `make run` starts the demo; `make test` runs the whole suite. Both work on a
# fresh Debian machine: they create .venv, install the package and the Debian packages they need.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the tests and the demo use: python3-venv (the virtual environment), Redis
# (scale-out stores), Mosquitto (the MQTT broker of the sensor integration),
# ffmpeg (H.264 for the simulator's RTSP), Chromium (wall tests), iproute2 (test namespaces),
# zbar-tools (QR codes decoded in tests).
DEBS    := python3-venv redis-server mosquitto ffmpeg chromium iproute2 fonts-noto-cjk zbar-tools
PARTS   := gateway api connectors inference events config
CORE    := -p xueliang.gateway -p xueliang.api -p xueliang.connectors -p xueliang.inference -p xueliang.events

.PHONY: help install system-deps run test lint typecheck bench clean

help:
	@echo "make run    - start the gateway with the demo (simulated cameras, footage, intake)"
	@echo "make test   - install what the tests need and run the whole suite"
	@echo "make lint / typecheck / bench / clean"

$(STAMP): pyproject.toml setup.py
	@$(MAKE) --no-print-directory system-deps
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

run: install system-deps
	$(BIN)/xueliang demo

# PYTEST_ALLOW_EMPTY=1 turns pytest's exit code 5 (no tests collected) into success.
test: install system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS) || { rc=$$?; [ $$rc -eq 5 ] && [ -n "$$PYTEST_ALLOW_EMPTY" ] && echo "pytest collected no tests" || exit $$rc; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy sees the parts under the xueliang import root through a tree of symlinks (see README).
typecheck: install
	@mkdir -p build/typecheck/xueliang
	@for p in $(PARTS); do ln -sfn ../../../$$p build/typecheck/xueliang/$$p; done
	$(BIN)/mypy $(CORE)

bench: install system-deps
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf build .mypy_cache .pytest_cache .ruff_cache
