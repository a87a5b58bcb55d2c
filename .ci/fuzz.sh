#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded time each.
set -euo pipefail
fuzztime=${1:-10s}
cd "$(dirname "$0")/.."
git grep -l '^func Fuzz' -- '*_test.go' ':!interop' | while read -r file; do
	pkg="./$(dirname "$file")"
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | cut -d' ' -f2); do
		echo "fuzz $pkg $target ($fuzztime)"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg"
	done
done
