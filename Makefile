# The two commands a newcomer needs:  make demo  (run the enclave on demo data)  and  make test.
VENV ?= .venv
PYTHON ?= python3
ENCLAVE = $(VENV)/bin/enclave

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml package.json scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $@

demo: setup
	VENV=$(VENV) bash scripts/demo.sh

test: setup
	VENV=$(VENV) bash scripts/test.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo .pytest_cache

include scripts/docker/images.mk
