#!/usr/bin/env bash
# Print the path of a working Python X.Y interpreter (argument: X.Y), or exit 1.
# Looks for pythonX.Y on PATH, then in pyenv's versions (a pyenv shim for a
# version that is installed but not selected fails to run, so each candidate
# is run once).  CI machines provide the interpreters; nothing is downloaded.
set -uo pipefail
version=${1:?usage: find_python.sh X.Y}
candidates=("python$version")
if command -v pyenv >/dev/null; then
    root=$(pyenv root)
    while IFS= read -r dir; do
        candidates+=("$dir/bin/python$version")
    done < <(ls -d "$root/versions/$version".* 2>/dev/null | sort -rV)
fi
for python in "${candidates[@]}"; do
    if found=$("$python" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$version'.split('.'))); print(sys.executable)" 2>/dev/null); then
        echo "$found"
        exit 0
    fi
done
exit 1
