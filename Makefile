# make report | make test | make lab | make book | make smoke | make bench — each sets itself up on first use:
# .venv from requirements.lock, vaelib editable, the project's Jupyter kernel, and (Debian/Ubuntu as root)
# the Fashion-MNIST package.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FASHION_DIR := /usr/share/datasets/fashion-mnist
# The Jupyter kernel of this venv (notebooks' kernelspec name; the display name says which environment it is).
KERNEL := vae-report
KERNEL_DISPLAY := vae-report (.venv)

export MPLBACKEND := Agg

PROFILE ?= full

.PHONY: setup report smoke sweep test lab book pair bench clean

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Rebuilt when the lock file or pyproject.toml is newer than the stamp.
$(STAMP): requirements.lock pyproject.toml | $(PY)
	$(PY) -m pip install -r requirements.lock
	$(PY) -m pip install --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "$(KERNEL_DISPLAY)"
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

# JupyterLab on notebooks/ with the project's kernel (served from the project root, so that executed copies
# and figures are reachable too). LAB_ARGS="--port 8899 --no-browser" passes options through.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks \
		--MappingKernelManager.default_kernel_name=$(KERNEL) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The report as a static website in build/book/ (MyST-NB under Sphinx, the Jupyter Book theme), from the executed
# notebooks and REPORT.md as they are (nothing is re-executed; run `make report` first). Offline; from the lock.
book: $(STAMP)
	$(PY) tools/book.py

# notebooks/NN_*.py (jupytext percent scripts) from the notebooks, or the notebooks from edited scripts: the newer
# side wins. JupyterLab (make lab) keeps the pairs in sync by itself; tests/test_notebooks.py checks them.
pair: $(STAMP)
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.ipynb

bench: $(STAMP)
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/inception_speed.py

clean:
	rm -rf build
