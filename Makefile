# The two commands a newcomer needs:  make demo  (the enclave on demo data, hub on 127.0.0.1:8000)
# and  make test.  make demo-check plays the whole story headless; make demo-cli plays it on the CLI.
VENV ?= .venv
PYTHON ?= python3
ENCLAVE = $(VENV)/bin/enclave

.PHONY: setup demo demo-cli test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml package.json scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $@

demo: setup
	VENV=$(VENV) bash scripts/demo-hub.sh

demo-cli: setup
	VENV=$(VENV) bash scripts/demo.sh

test: setup
	VENV=$(VENV) bash scripts/test.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Every benchmark script (bench/common.py is what they share, not a benchmark).
bench: setup
	for b in $(filter-out bench/common.py,$(wildcard bench/*.py)); do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo .pytest_cache

include images/images.mk

# The demo through JupyterHub and Docker workspaces (needs root): check it headless, stop it.
.PHONY: demo-check demo-stop
demo-check: setup
	$(VENV)/bin/python scripts/demo_check.py

demo-stop:
	bash scripts/demo-hub.sh stop
