# make report | make test | make smoke | make bench — each sets itself up on first use:
# .venv from requirements.lock, vaelib editable, and (Debian/Ubuntu as root) the Fashion-MNIST package.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FASHION_DIR := /usr/share/datasets/fashion-mnist

export MPLBACKEND := Agg

PROFILE ?= full

.PHONY: setup report smoke sweep test bench clean

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Rebuilt when the lock file or pyproject.toml is newer than the stamp.
$(STAMP): requirements.lock pyproject.toml | $(PY)
	$(PY) -m pip install -r requirements.lock
	$(PY) -m pip install --no-deps -e .
	@if [ ! -d $(FASHION_DIR) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's dataset-fashion-mnist"; \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist) \
			|| echo "warning: dataset-fashion-mnist not installed; vaelib.data falls back to other sources"; \
	fi
	touch $@

# Full report: every notebook, profile "full" (PROFILE=paper: the paper profile); ONLY=01 runs one notebook;
# AUTHOR="..." tags every figure and GIF (default: git config user.name).
report: $(STAMP)
	$(PY) -m vaelib report --profile $(PROFILE) $(if $(ONLY),--only $(ONLY)) $(if $(AUTHOR),--author "$(AUTHOR)")

# Same, profile "smoke" (seconds per notebook), written under build/smoke/.
smoke: $(STAMP)
	$(PY) -m vaelib report --profile smoke $(if $(ONLY),--only $(ONLY))

# Train (or load) every run the chapters need (ONLY=02_latent_sizes: one chapter), local engine, so that the
# notebooks then only load; `python -m vaelib sweep --engine ray` runs them on a Ray cluster.
sweep: $(STAMP)
	$(PY) -m vaelib sweep --profile $(PROFILE) $(ONLY)

# Unit tests and nbval over notebooks/*.ipynb, smoke profile, outputs in a temp dir (see conftest.py).
test: $(STAMP)
	VAELIB_PROFILE=smoke $(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/inception_speed.py

clean:
	rm -rf build
