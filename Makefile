# The two commands README.md promises: `make bench` and `make test`.
# Each creates its own virtualenv (.venv) with everything it needs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tlsfast-installed

.PHONY: bench bench-engine bench-report bench-loopback bench-proxy bench-breakdown bench-churn docs lint test test-matrix test-twisted asan fuzz dist clean

$(STAMP): pyproject.toml setup.py tlsfast/_openssl_spec.py $(wildcard _ext/*.pyx _ext/*.pxd) _ext/record_loop.pxi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# build-system.requires too: `pip install -e . --no-build-isolation` then rebuilds the engine in place
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		>$(VENV)/build-requires.txt
	$(PY) -m pip install -q -r $(VENV)/build-requires.txt
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m tlsfast info --strict
	touch $@

## main job: tlsfast bench --quick -- bulk, echo, full/resumed handshakes over
## loopback and the in-memory engine; tlsfast vs stock Twisted vs asyncio vs
## plain TCP vs the C reference loop (about 1 minute)
bench: $(STAMP)
	$(PY) -m tlsfast bench --quick --json bench-quick.json --plot bench-quick.png

## in-memory engine and glue benchmarks (pytest-benchmark), one group per write size,
## plus TLSEngine(conn) binding cost.  OPENSSL_CONF pins the TLS 1.3 suite and
## group for stdlib ssl (docs/benchmarks.md).
bench-engine: $(STAMP)
	OPENSSL_CONF=$(CURDIR)/bench/openssl.cnf $(PY) -m pytest bench -q -p no:randomly \
		--benchmark-only --benchmark-columns=median,iqr,ops --benchmark-sort=name

## interleaved in-memory rounds (engine, glue, C loop) -> the engine and glue
## tables in docs/benchmarks.md (~1 min; = bench/report.py --overhead)
bench-report: $(STAMP)
	$(PY) -m tlsfast.bench.engine_report --overhead

## the Twisted drop-in targets over loopback (~10 min) -> docs/benchmarks.md
bench-loopback: $(STAMP)
	bash bench/loopback.sh

## tlsfast proxy vs haproxy, stunnel and hitch (installs them if missing; ~8-12 min)
## -> bench-results/proxy.md, the proxy tables in docs/benchmarks.md
bench-proxy: $(STAMP)
	bash bench/proxy_compare.sh

## per-connection CPU and Python calls by phase: drop-in server, drop-in client,
## proxy (~20 s) -> bench-breakdown.md / .json, the breakdown in docs/benchmarks.md
bench-breakdown: $(STAMP)
	$(PY) -m tlsfast bench breakdown --markdown bench-breakdown.md --json bench-breakdown.json

## RSS over 100,000 short TLS connections (full handshake, 1 B echo, close) through
## the drop-in server and the proxy (~12 min); exit 1 if it is not flat -> bench-churn.json
bench-churn: $(STAMP)
	$(PY) -m tlsfast bench churn --json bench-churn.json

## the documentation site (also built, warning-free, by tests/test_docs.py)
docs: $(STAMP)
	$(PY) -m sphinx -W -b html docs docs/_build/html

## ruff and mypy, configured in pyproject.toml (part of `make test`)
lint: $(STAMP)
	$(PY) -m ruff check tlsfast tests bench tools docs setup.py
	$(PY) -m mypy

## the whole test suite (on $(PYTHON), 3.11 in CI), then the Python-version matrix
test: $(STAMP) lint
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q bench --benchmark-disable
	bash tools/asan.sh
	bash tools/matrix.sh

## install + engine, Twisted-glue and examples tests on Python 3.12 and 3.13
## (.venv-3.12, .venv-3.13; a version the machine lacks is skipped; ~1.5 min each)
test-matrix:
	bash tools/matrix.sh

## engine tests under AddressSanitizer (separate build in .venv-asan)
asan:
	bash tools/asan.sh

## the Twisted glue: our tests and Twisted's own suites, stock vs tlsfast
test-twisted: $(STAMP)
	$(PY) -m pytest -q tests/twisted tests/test_twisted_suite.py

## longer fuzzing run (documented in docs/testing.md)
fuzz: $(STAMP)
	TLSFAST_FUZZ_EXAMPLES=20000 $(PY) -m pytest -q tests/test_engine_fuzz.py

## sdist + manylinux wheels for each of Python 3.11/3.12/3.13 found, into dist/
dist:
	bash tools/dist.sh

clean:
	rm -rf $(VENV) .venv-asan .venv-3.12 .venv-3.13 .venv-dist build dist *.egg-info tlsfast/*.so _ext/*.c
