# Every target creates .venv and installs the project on first use, so a
# fresh machine needs only Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# `make test-otel`: heavy test-only components (Phoenix ~850 MB, the openai
# SDK and its instrumentation) in a venv of their own, cached like .venv.
OTEL_VENV := .venv-otel
OTEL_PY := $(OTEL_VENV)/bin/python
OTEL_STAMP := $(OTEL_VENV)/.installed

.PHONY: demo test test-pure check-core bench-peers test-otel test-browser test-extended bench lint clean test-plugin-matrix

# anyio's own test suite on plain and virtual-time loops (benchmarks/anyio_suite.py):
# too slow for `make test` (about 3 minutes), so it has its own venv with anyio's
# test dependencies; .ci/run runs it.
EXT_VENV := .venv-extended
EXT_PY := $(EXT_VENV)/bin/python
EXT_STAMP := $(EXT_VENV)/.installed

# The editable install also builds the compiled core (setup.py); when it
# cannot be built the install still succeeds and the pure core is used.
$(STAMP): pyproject.toml setup.py $(wildcard harn_async_trace/_core/*.c harn_async_trace/_core/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -c "import harn_async_trace as h; print('harn-async-trace core:', 'compiled' if h.accelerated else 'pure Python (the C extension was not built)')"
	touch $(STAMP)

$(EXT_STAMP): pyproject.toml
	test -x $(EXT_PY) || $(PYTHON) -m venv $(EXT_VENV)
	$(EXT_PY) -m pip install --quiet --upgrade pip
	$(EXT_PY) -m pip install --quiet -e . uvloop trio hypothesis 'pytest>=9' pytest-mock \
		pytest-timeout trustme truststore psutil blockbuster
	touch $(EXT_STAMP)

demo: $(STAMP)
	$(PY) -m harn_async_trace.cli run examples/agent.harn --summary --mock-time 1700000000000

test: $(STAMP)
	$(PY) -m pytest -q

$(OTEL_STAMP): pyproject.toml tests_otel/requirements.txt
	test -x $(OTEL_PY) || $(PYTHON) -m venv $(OTEL_VENV)
	$(OTEL_PY) -m pip install --quiet --upgrade pip
	$(OTEL_PY) -m pip install --quiet -e '.[dev]' -r tests_otel/requirements.txt
	touch $(OTEL_STAMP)

test-otel: $(OTEL_STAMP)
	$(OTEL_PY) -m pytest -q tests_otel

# The HTML viewer in real headless Chromium. Kept out of `make test`'s
# install: Debian's chromium (no browser download is possible here) and
# Playwright for Python, added to .venv by this target only.
CHROMIUM := /usr/bin/chromium
BROWSER_STAMP := $(VENV)/.browser-installed

$(BROWSER_STAMP): $(STAMP)
	test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(PY) -m pip install --quiet 'playwright>=1.40'
	touch $(BROWSER_STAMP)

test-browser: $(BROWSER_STAMP)
	$(PY) -m pytest -q tests_browser

test-extended: $(EXT_STAMP)
	$(EXT_PY) benchmarks/anyio_suite.py

# The whole suite again on the pure-Python core (CI runs both).
test-pure: $(STAMP)
	HARN_TRACE_PURE=1 $(PY) -m pytest -q

# Fails unless the compiled core was built (CI machines have gcc).
check-core: $(STAMP)
	$(PY) -c "import sys, harn_async_trace as h; sys.exit(0 if h.accelerated else 'the compiled core was not built')"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy --strict harn_async_trace vm_demo
	$(PY) -m mypy --strict tests
	$(PY) -m mypy --strict conftest.py

# The pytest plugin against other pytest-asyncio releases than the newest that
# `make test` gets, each in a venv of its own: the lowest supported one (with
# syrupy beside it), and one too old (with pytest 8), which must give a clear
# error; the goldens need no pytest-asyncio and run on both.
MATRIX := .venv-matrix
PLUGIN_TESTS := $(wildcard tests/test_pytest_plugin*.py)
MATRIX_PINS_lowest := '.[uvloop,pytest]' pytest-asyncio==1.4.0 syrupy
MATRIX_PINS_old := '.[uvloop]' pytest-asyncio==0.24.0

$(MATRIX)/%/.installed: pyproject.toml
	test -x $(MATRIX)/$*/bin/python || $(PYTHON) -m venv $(MATRIX)/$*
	$(MATRIX)/$*/bin/python -m pip install --quiet --upgrade pip
	$(MATRIX)/$*/bin/python -m pip install --quiet -e $(MATRIX_PINS_$*)
	touch $@

test-plugin-matrix: $(MATRIX)/lowest/.installed $(MATRIX)/old/.installed
	$(MATRIX)/lowest/bin/python -m pytest -q $(PLUGIN_TESTS)
	$(MATRIX)/old/bin/python -m pytest -q tests/test_pytest_plugin_realtime.py tests/test_pytest_plugin_goldens.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# benchmarks/spans.py beside Logfire and ddtrace (both configured to send
# nothing), installed in a venv of their own: never part of `make test`.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml setup.py
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[dev]' logfire ddtrace
	touch $(BENCH_VENV)/.installed

bench-peers: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/spans.py

clean:
	rm -rf $(VENV) $(OTEL_VENV) $(MATRIX) $(EXT_VENV) $(BENCH_VENV) build *.egg-info harn_async_trace/_core/*.so
