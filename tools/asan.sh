#!/usr/bin/env bash
# Run the engine tests against an AddressSanitizer build of the compiled core.
# The engine is built with -fsanitize=address (setup.py, TLSFAST_ASAN=1) into
# its own virtualenv (.venv-asan); the uninstrumented interpreter gets libasan
# preloaded.  Leak detection is off: CPython frees little at exit by design;
# leaks are covered by tests/test_engine_leaks.py.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
VENV=$ROOT/.venv-asan
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
fi
"$VENV/bin/pip" install -q "$ROOT[test]" 2>/dev/null
# a non-editable instrumented build, never sharing the .so with .venv
TLSFAST_ASAN=1 "$VENV/bin/pip" install -q --no-cache-dir --force-reinstall --no-deps "$ROOT" 2>/dev/null
LIBASAN=$(gcc -print-file-name=libasan.so)
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
export TLSFAST_FUZZ_EXAMPLES=${TLSFAST_FUZZ_EXAMPLES:-100}
# run from a copy of the tests so ./tlsfast does not shadow the installed build
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r "$ROOT/tests" "$WORK/"
cd "$WORK"
ENGINE=$(LD_PRELOAD="$LIBASAN" "$VENV/bin/python" -c \
    "import tlsfast, tlsfast._engine as e; assert tlsfast.ACCELERATED, tlsfast.backend_info().problems; print(e.__file__)")
nm -D "$ENGINE" | grep -q __asan_init || { echo "engine $ENGINE is not instrumented"; exit 1; }
echo "AddressSanitizer engine: $ENGINE"
LD_PRELOAD="$LIBASAN" "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    tests/test_engine.py tests/test_engine_errors.py tests/test_engine_chunking.py tests/test_engine_fuzz.py \
    tests/test_engine_misuse.py tests/test_engine_late_bind.py tests/test_engine_spare_results.py tests/test_engine_idle_bios.py \
    tests/twisted/test_record_loop.py tests/twisted/test_epollreactor.py tests/twisted/test_loopback.py
