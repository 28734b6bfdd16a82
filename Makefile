# The two commands README.md promises: `make bench` and `make test`.
# Each creates its own virtualenv (.venv) with everything it needs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tlsfast-installed

.PHONY: bench bench-report test test-engine test-twisted asan fuzz clean

$(STAMP): pyproject.toml setup.py $(wildcard _ext/*.pyx _ext/*.pxd)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) -m tlsfast info --strict
	touch $@

## main job: side-by-side engine benchmark (tlsfast vs pyOpenSSL vs stdlib vs C),
## one group per write size (benchmark.group), plus TLSEngine(conn) binding cost.
## OPENSSL_CONF pins the TLS 1.3 suite/group for stdlib ssl (docs/benchmarks.md).
bench: $(STAMP)
	OPENSSL_CONF=$(CURDIR)/bench/openssl.cnf $(PY) -m pytest bench -q -p no:randomly \
		--benchmark-only --benchmark-columns=median,iqr,ops --benchmark-sort=name

## interleaved rounds -> the markdown table in docs/benchmarks.md (~1 min)
bench-report: $(STAMP)
	$(PY) bench/report.py --overhead

## the whole test suite
test: $(STAMP)
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q bench --benchmark-disable
	bash tools/asan.sh

## engine tests under AddressSanitizer (separate build in .venv-asan)
asan:
	bash tools/asan.sh

## longer fuzzing run (documented in docs/testing.md)
fuzz: $(STAMP)
	TLSFAST_FUZZ_EXAMPLES=20000 $(PY) -m pytest -q tests/test_engine_fuzz.py

clean:
	rm -rf $(VENV) .venv-asan build *.egg-info tlsfast/*.so _ext/*.c
