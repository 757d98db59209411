# The two commands of the README's quick start are `make demo` and `make test`.
VENV := .venv
LAKELAB := $(VENV)/bin/lakelab
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install up demo test down status reset bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,notebooks]'
	touch $@

install: $(VENV)/.installed  ## Python packages (with JupyterLab), then system packages and jars (cached)
	$(LAKELAB) install

up: install  ## start the whole stack and wait until every service answers
	$(LAKELAB) up

demo: up  ## the main demo on the running stack
	$(LAKELAB) lab-a demo

test: $(VENV)/.installed  ## the whole suite; brings the stack up once for the session
	$(VENV)/bin/pytest

down:
	$(LAKELAB) down

status:
	$(LAKELAB) status

reset:
	$(LAKELAB) reset --yes

bench: install  ## every benchmark on the running stack, side by side with the standard ways: bench/results/<date>/
	$(LAKELAB) bench
