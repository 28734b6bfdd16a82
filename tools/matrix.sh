#!/usr/bin/env bash
# The Python-version matrix of `make test`: on each of the given versions
# (default 3.12 3.13) install tlsfast in its own venv (.venv-X.Y, editable, as
# .venv is; `tlsfast info --strict` checks the engine is accelerated), run the
# engine, Twisted-glue and examples subset of the suite, and the sdist part of
# tests/test_packaging.py.  The whole suite runs on 3.11 in .venv.  A version
# this machine lacks is skipped with one line.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SUBSET=(tests/test_binding.py tests/test_openssl_spec.py tests/test_engine.py tests/test_engine_errors.py tests/test_engine_chunking.py
        tests/test_engine_fuzz.py tests/test_engine_leaks.py tests/twisted tests/test_examples.py
        tests/test_cli_extras.py)
# the large transfers test flow control, not the interpreter: 3.11 runs them
EXCLUDE=(--ignore=tests/twisted/test_large.py)

versions=("$@")
((${#versions[@]})) || versions=(3.12 3.13)
for v in "${versions[@]}"; do
    if ! python=$(bash tools/find_python.sh "$v"); then
        echo "matrix: python$v not found on this machine: skipping the $v subset"
        continue
    fi
    venv=.venv-$v
    stamp=$venv/.tlsfast-installed
    start=$SECONDS
    # (re)install when the build inputs changed, as the Makefile does for .venv
    if [ ! -e "$stamp" ] || [ -n "$(find pyproject.toml setup.py _ext/*.pyx _ext/*.pxd -newer "$stamp")" ]; then
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --upgrade pip
        "$venv/bin/python" -m pip install -q -e '.[test-core]'
        touch "$stamp"
    fi
    "$venv/bin/python" -m tlsfast info --strict | sed "s/^/matrix $v: /"
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "${SUBSET[@]}" "${EXCLUDE[@]}"
    # the sdist builds, installs into a fresh venv and accelerates on this version
    # too (the wheel is the same build: make dist makes one per version)
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_packaging.py -k "not wheel"
    echo "matrix: python $v subset done in $((SECONDS - start)) s"
done
