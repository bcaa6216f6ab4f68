# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test venv schema golden mutation clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip > $(VENV)/pip.log 2>&1 || true  # an old pip still works
	$(BIN)/python -m pip install -q -e '.[dev]' >> $(VENV)/pip.log 2>&1 || { tail -40 $(VENV)/pip.log; exit 1; }
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m loopc.compiler.cli.demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

schema: $(STAMP)
	$(BIN)/loopc schema

golden: $(STAMP)
	LOOPC_UPDATE_GOLDEN=1 $(BIN)/python -m pytest tests -k golden -q

# Mutation testing of the core (minutes per module; not part of `make test` or CI). MODULES=runtime/gate/decide.py ...
mutation: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,mutation]' >> $(VENV)/pip.log 2>&1 || { tail -40 $(VENV)/pip.log; exit 1; }
	$(BIN)/python ci/mutation.py $(MODULES)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo-project
