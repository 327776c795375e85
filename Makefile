# gantry: `make demo` runs the main job end to end, `make test` runs every check.
# Both set up what they need first (idempotent): apt packages when missing, then a venv.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
APT_PKGS := runc skopeo podman buildah umoci docker-registry busybox-static debootstrap \
            iproute2 iptables nftables xz-utils zstd bzip2 curl wrk
# installed without recommends (docker.io's pull in needrestart and start services)
APT_NORECS := docker.io containerd tini
STAMP   := $(VENV)/.stamp-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup apt venv test test-quick lint typecheck demo bench clean

setup: apt venv
	@# PYTHONDONTWRITEBYTECODE may be set: precompile so every start does not recompile
	@$(BIN)/python -m compileall -q src >/dev/null

apt:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	norecs=""; for p in $(APT_NORECS); do dpkg -s $$p >/dev/null 2>&1 || norecs="$$norecs $$p"; done; \
	if [ -n "$$missing$$norecs" ]; then \
	  echo "installing:$$missing$$norecs"; \
	  apt-get update -qq; \
	  if [ -n "$$missing" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	  if [ -n "$$norecs" ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$norecs >/dev/null; fi; \
	fi
	@scripts/setup-peers.sh

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.stamp-*; touch $@

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/pytest -q -n 2 --timeout=600 $(PYTEST_ARGS)

# the quick subset: no real peers, no large data (about a minute)
test-quick: venv
	$(BIN)/pytest -q -n 2 -m "not slow" --timeout=120 $(PYTEST_ARGS)

demo: setup
	@scripts/demo.sh

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
