#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded time each (first
# argument, default 10s; plain seconds or a number with s/m). Any failure
# fails the run: a crash, a panic, a failed check, a slow input and one that
# allocates gigabytes. An optional second argument, an extended regexp,
# selects the "./pkg Target" pairs to run (e.g. '.ci/fuzz.sh 2m nagios').
#
# Why not `go test -fuzz=X -fuzztime=10s`: Go 1.26's fuzz coordinator can end
# such a run with "context deadline exceeded" and no input. The -fuzztime
# context closes its Done channel before it cancels the workers' child
# context, and stop() only excuses the error when the child already reports
# it (internal/fuzz/fuzz.go); on busy cores the coordinator wakes in that gap.
# It is a race in the harness, independent of the inputs. So the script
# builds the instrumented test binary (`go test -c -fuzz`), gives it an
# execution budget it never reaches, and ends it with SIGINT after the time:
# the coordinator's ^C path, which stops the worker and reports no error.
#
# Slow inputs: a watchdog reads the coordinator's progress lines (every 3 s)
# and the worker's CPU time. A worker that burns $STALL_CPU CPU seconds
# (default 5) while the progress line does not move is busy with one input:
# the watchdog sends it SIGQUIT, the coordinator writes that input under
# testdata/fuzz/<target>/ as a failing input ("fuzzing process hung or
# terminated unexpectedly"), and the script replays it to print the stacks
# of the slow path. The worker's own check (it panics after 10 s of wall
# time on one input) ends the same way. A run ends at the first progress
# line in the last 3 s of its time (the coordinator prints one every 3 s),
# or later while the worker is busy with one input: a slow input in flight
# is caught, not cut off.
#
# Memory: the test binary and its worker run with $FUZZ_MEM_MB MB of address
# space (ulimit -v, default 4096; Go reserves about 2 GB at start), so an
# input that makes a decoder allocate gigabytes fails in the worker with
# "fatal error: out of memory" while it is in flight, and is written and
# replayed (under the same limit) like a slow one.
#
# GOMAXPROCS=1 keeps the worker's CPU time close to its wall time (no
# parallel GC), and minimization is off (-test.fuzzminimizetime=0), since a
# minimization step does not move the progress line either: a failing
# input is kept as the fuzzer found it.
#
# Allowed stalls: targets whose slow input is known and routed to the owner
# of the code, each with the finding that describes it. A stall there is a
# warning (its input is not left in testdata); a stall anywhere else, or
# any other failure, fails the run. Keep this empty.
declare -A allowed_stalls=(
	# ["./pkg FuzzTarget"]="/work/briefs/s3/fuzz-findings/pkg-FuzzTarget.md"
)
set -euo pipefail
fuzztime=${1:-10s}
only=${2:-}
stall_cpu=${STALL_CPU:-5}
mem_mb=${FUZZ_MEM_MB:-4096}
cd "$(dirname "$0")/.."

case $fuzztime in
*m) secs=$((${fuzztime%m} * 60)) ;;
*s) secs=${fuzztime%s} ;;
*) secs=$fuzztime ;;
esac
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
	echo "fuzz.sh: bad time $fuzztime (want e.g. 10s, 2m or 30)" >&2
	exit 2
fi
# A healthy worker spends up to 3 CPU seconds between two progress lines.
if ! [[ $stall_cpu =~ ^[0-9]+$ ]] || [ "$stall_cpu" -lt 4 ]; then
	echo "fuzz.sh: STALL_CPU=$stall_cpu: want 4 or more (CPU seconds; progress lines come every 3 s)" >&2
	exit 2
fi
if ! [[ $mem_mb =~ ^[0-9]+$ ]] || [ "$mem_mb" -lt 3072 ]; then
	echo "fuzz.sh: FUZZ_MEM_MB=$mem_mb: want 3072 or more (Go reserves about 2 GB of address space at start)" >&2
	exit 2
fi

hz=$(getconf CLK_TCK)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cachedir=$(go env GOCACHE)/fuzz

# worker_of PID: the fuzz worker process started by the test binary PID.
worker_of() {
	local p
	for p in $(pgrep -P "$1" || true); do
		if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- '-test.fuzzworker'; then
			echo "$p"
			return
		fi
	done
}

# cpu_of PID: user+system CPU time of PID in clock ticks (0 when gone).
cpu_of() {
	local stat
	if [ -n "$1" ] && stat=$(cat "/proc/$1/stat" 2>/dev/null); then
		# Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
		stat=${stat##*) }
		set -- $stat
		echo $((${12} + ${13}))
		return
	fi
	echo 0
}

# progress FILE: the coordinator's last progress line without its clock and
# rate, so it changes only when inputs complete.
progress() {
	grep -a '^fuzz: elapsed' "$1" | tail -n 1 | sed -E 's/^fuzz: elapsed: [^,]*, //; s/ \([0-9]+\/sec\)//' || true
}

# fuzz_one PKG IMPORTPATH TARGET BINARY: runs one target; returns 0 when
# it passes (or stalls on the allow-list), 1 otherwise.
fuzz_one() {
	local pkg=$1 importpath=$2 target=$3 bin=$4 out="$work/out"
	local pid worker="" last="" base=0 cpu key w busy start now
	local stalled=0 ending=0 interrupted=0 rc=0
	echo "fuzz $pkg $target ($fuzztime)"
	(
		cd "$pkg"
		ulimit -v $((mem_mb * 1024))
		exec env GOMAXPROCS=1 "$bin" -test.run='^$' -test.fuzz="^${target}\$" \
			-test.fuzztime=1000000000x -test.fuzzminimizetime=0 -test.parallel=1 \
			-test.fuzzcachedir="$cachedir/$importpath"
	) >"$out" 2>&1 &
	pid=$!
	start=$SECONDS
	while kill -0 "$pid" 2>/dev/null; do
		sleep 0.5
		w=$(worker_of "$pid")
		cpu=$(cpu_of "$w")
		key=$(progress "$out")
		if [ "$w" != "$worker" ] || [ "$key" != "$last" ]; then
			worker=$w last=$key base=$cpu
			if [ $ending -eq 1 ] && [ $interrupted -eq 0 ]; then
				kill -INT "$pid" 2>/dev/null || true
				interrupted=1
			fi
			continue
		fi
		busy=$(((cpu - base) / hz))
		if [ -n "$worker" ] && [ $stalled -eq 0 ] && [ "$busy" -ge "$stall_cpu" ]; then
			echo "fuzz $pkg $target: the worker spent ${busy}s of CPU on one input; stopping it with SIGQUIT to keep the input"
			kill -QUIT "$worker" 2>/dev/null || true
			stalled=1
		fi
		now=$SECONDS
		# From 3 s before the time limit (one progress period), the run
		# ends at the next progress line: never in the middle of a stall.
		if [ $((now - start + 3)) -ge "$secs" ]; then
			ending=1
			# A worker starved of CPU makes no progress without reaching the
			# stall limit either: that is the machine, not an input.
			if [ $interrupted -eq 0 ] && [ $((now - start)) -ge $((secs + 30)) ]; then
				echo "fuzz $pkg $target: no progress for 30s after the time limit, below the stall limit (starved of CPU?): stopping"
				kill -INT "$pid" 2>/dev/null || true
				interrupted=1
			fi
		fi
	done
	wait "$pid" || rc=$?
	cat "$out"
	if grep -q 'fuzzing process hung or terminated unexpectedly' "$out"; then
		stalled=1
	fi
	if [ $stalled -eq 1 ]; then
		local input
		input=$(sed -n 's/^ *Failing input written to //p' "$out" | tail -n 1)
		if [ -n "$input" ]; then
			echo "fuzz $pkg $target: replaying $pkg/$input (goroutine stacks if it runs out of memory or still runs after 30s):"
			(cd "$pkg" && ulimit -v $((mem_mb * 1024)) && timeout -s QUIT 30s "$bin" -test.run="^${target}\$/^$(basename "$input")\$" -test.v 2>&1 | head -n 80) || true
		fi
		local finding=${allowed_stalls["$pkg $target"]:-}
		if [ -n "$finding" ]; then
			echo "WARNING: $pkg $target stalled on a slow or memory-hungry input; allowed, see $finding"
			[ -n "$input" ] && rm -f "$pkg/$input"
			return 0
		fi
		echo "FAIL: $pkg $target: a slow or memory-hungry input (input above; a decoder of outside bytes must bound its work)"
		return 1
	fi
	if [ $rc -ne 0 ]; then
		echo "FAIL: $pkg $target (exit $rc)"
		return 1
	fi
	return 0
}

# The packages with fuzz targets, in order, and their targets.
pkgs=()
declare -A targets_of=()
while read -r file; do
	pkg="./$(dirname "$file")"
	for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | cut -d' ' -f2); do
		[[ -z $only || "$pkg $target" =~ $only ]] || continue
		[ -n "${targets_of[$pkg]:-}" ] || pkgs+=("$pkg")
		targets_of[$pkg]+="$target "
	done
done < <(git grep -l '^func Fuzz' -- '*_test.go' ':!interop')

binary() { echo "$work/$(echo "${1#./}" | tr '/' '_').test"; }

# build PKG: the package's test binary, instrumented for fuzzing. The next
# package builds while this one fuzzes (the worker uses one core).
build() { go test -c -fuzz=. -o "$(binary "$1")" "$1" >"$(binary "$1").log" 2>&1; }

failed=()
next=""
if [ ${#pkgs[@]} -gt 0 ]; then
	build "${pkgs[0]}" &
	next=$!
fi
for i in "${!pkgs[@]}"; do
	pkg=${pkgs[$i]}
	if ! wait "$next"; then
		cat "$(binary "$pkg").log"
		echo "FAIL: $pkg: the test binary does not build"
		exit 1
	fi
	if [ $((i + 1)) -lt ${#pkgs[@]} ]; then
		build "${pkgs[$((i + 1))]}" &
		next=$!
	fi
	importpath=$(go list "$pkg")
	for target in ${targets_of[$pkg]}; do
		fuzz_one "$pkg" "$importpath" "$target" "$(binary "$pkg")" || failed+=("$pkg $target")
	done
done
wait
if [ ${#failed[@]} -gt 0 ]; then
	printf 'FAIL: %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz: every target ran $fuzztime without a failure"
