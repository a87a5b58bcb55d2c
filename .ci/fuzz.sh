#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded time each. A crash, a
# panic or a failed check fails the run. A worker still busy with one slow
# input when the time is up makes go test report "context deadline exceeded"
# without an input to show: that is printed as a warning with the target's
# name (a slow input is a bug to chase, but not one this bounded run can
# reproduce), and the run goes on.
set -euo pipefail
fuzztime=${1:-10s}
cd "$(dirname "$0")/.."
slow=()
while read -r file; do
	pkg="./$(dirname "$file")"
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | cut -d' ' -f2); do
		echo "fuzz $pkg $target ($fuzztime)"
		out=$(mktemp)
		if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1 | tee "$out"; then
			rm -f "$out"
			continue
		fi
		if grep -q 'context deadline exceeded' "$out" && ! grep -qE 'Failing input written|panic:' "$out"; then
			slow+=("$pkg $target")
			rm -f "$out"
			continue
		fi
		rm -f "$out"
		exit 1
	done
done < <(git grep -l '^func Fuzz' -- '*_test.go' ':!interop')
if [ ${#slow[@]} -gt 0 ]; then
	echo "WARNING: a slow input kept a fuzz worker busy past the time limit in: ${slow[*]}"
fi
