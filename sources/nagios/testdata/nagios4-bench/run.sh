#!/bin/sh
# Side-by-side throughput of Debian's Nagios 4 and Recon's nagios module on
# the same plugins, on this machine, in one run (docs/benchmarks-nagios.md).
#
#   sudo sources/nagios/testdata/nagios4-bench/run.sh [SERVICES] [SECONDS]
#
# Nagios runs SERVICES services (check_dummy, then check_tcp against a local
# listener), each due every second (interval_length=1), so it is always
# behind: the results it writes per second are its sustained rate. Then the
# Go benchmarks run the same plugins with 16 concurrent workers, check_tcp
# against the same listener.
# Environment: CHECK_WORKERS (Nagios worker processes, default 4),
# DUMMY_ONLY=1 (measure Nagios on check_dummy only, no Go benchmarks).
# Needs: root, nagios4-core, monitoring-plugins-basic, python3, go.
set -eu
SERVICES=${1:-2000}
SECONDS_RUN=${2:-30}
WARMUP=10
PLUGINS=/usr/lib/nagios/plugins
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
WORK=$(mktemp -d /tmp/nagios4-bench.XXXXXX)
chown nagios:nagios "$WORK"
LISTENER=
cleanup() {
	[ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null || true
	[ -f "$WORK/nagios.lock" ] && kill "$(cat "$WORK/nagios.lock")" 2>/dev/null || true
	sleep 1
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A local TCP port that accepts and closes, with a deep backlog.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
' "$PORT" &
LISTENER=$!

# cpu_ticks PID...: utime+stime+cutime+cstime of the processes, in ticks.
cpu_ticks() {
	t=0
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		v=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12+$13+$14+$15}')
		t=$((t + v))
	done
	echo "$t"
}

run_nagios() { # NAME COMMAND_LINE
	name=$1
	rm -rf "$WORK/run" && mkdir -p "$WORK/run/checkresults" && chown -R nagios:nagios "$WORK/run"
	D=$WORK/run
	cat > "$D/nagios.cfg" <<CFG
log_file=$D/nagios.log
cfg_file=$D/objects.cfg
object_cache_file=$D/objects.cache
precached_object_file=$D/objects.precache
resource_file=$D/resource.cfg
status_file=$D/status.dat
status_update_interval=60
temp_file=$D/nagios.tmp
temp_path=$D
lock_file=$D/nagios.lock
check_result_path=$D/checkresults
query_socket=$D/nagios.qh
nagios_user=nagios
nagios_group=nagios
check_external_commands=0
retain_state_information=0
use_syslog=0
log_notifications=0
log_service_retries=0
log_host_retries=0
log_event_handlers=0
log_initial_states=0
log_passive_checks=0
interval_length=1
service_inter_check_delay_method=n
host_inter_check_delay_method=n
max_service_check_spread=1
max_host_check_spread=1
max_concurrent_checks=0
check_result_reaper_frequency=1
max_check_result_reaper_time=1
enable_notifications=0
enable_flap_detection=0
enable_event_handlers=0
check_service_freshness=0
check_host_freshness=0
execute_host_checks=0
enable_environment_macros=0
use_large_installation_tweaks=1
check_workers=${CHECK_WORKERS:-4}
process_performance_data=1
service_perfdata_file=$D/perf.out
service_perfdata_file_template=\$TIMET\$
service_perfdata_file_mode=a
service_perfdata_file_processing_interval=0
CFG
	echo "\$USER1\$=$PLUGINS" > "$D/resource.cfg"
	{
		printf 'define command {\n command_name bench\n command_line %s\n}\n' "$2"
		printf 'define command {\n command_name noop\n command_line %s/check_dummy 0\n}\n' "$PLUGINS"
		printf 'define timeperiod {\n timeperiod_name always\n alias always\n monday 00:00-24:00\n tuesday 00:00-24:00\n wednesday 00:00-24:00\n thursday 00:00-24:00\n friday 00:00-24:00\n saturday 00:00-24:00\n sunday 00:00-24:00\n}\n'
		printf 'define contact {\n contact_name nobody\n host_notifications_enabled 0\n service_notifications_enabled 0\n host_notification_period always\n service_notification_period always\n host_notification_options n\n service_notification_options n\n host_notification_commands noop\n service_notification_commands noop\n}\n'
		printf 'define host {\n host_name localhost\n address 127.0.0.1\n check_command noop\n max_check_attempts 1\n check_period always\n active_checks_enabled 0\n contacts nobody\n notification_period always\n}\n'
		i=0
		while [ $i -lt "$SERVICES" ]; do
			printf 'define service {\n host_name localhost\n service_description s%d\n check_command bench\n check_interval 1\n retry_interval 1\n max_check_attempts 1\n check_period always\n contacts nobody\n notification_period always\n notifications_enabled 0\n}\n' $i
			i=$((i + 1))
		done
	} > "$D/objects.cfg"
	chown -R nagios:nagios "$D"
	/usr/sbin/nagios4 -v "$D/nagios.cfg" > "$D/verify.log" 2>&1 || { cat "$D/verify.log"; exit 1; }
	/usr/sbin/nagios4 -d "$D/nagios.cfg"
	sleep "$WARMUP"
	MAIN=$(cat "$D/nagios.lock")
	PIDS="$MAIN $(pgrep -P "$MAIN" | tr '\n' ' ')"
	c0=$(cpu_ticks $PIDS)
	t0=$(date +%s)
	sleep "$SECONDS_RUN"
	t1=$(date +%s)
	c1=$(cpu_ticks $PIDS)
	kill "$MAIN"
	sleep 2
	results=$(awk -v a="$t0" -v b="$t1" '$1 >= a && $1 < b' "$D/perf.out" | wc -l)
	hz=$(getconf CLK_TCK)
	awk -v n="$name" -v r="$results" -v s="$((t1 - t0))" -v c="$((c1 - c0))" -v hz="$hz" 'BEGIN {
		printf "nagios4 %-12s %7.0f results/s  %6.0f µs CPU/result (nagios + workers + plugins)\n", n, r / s, (c / hz) * 1e6 / (r > 0 ? r : 1)
	}'
}

echo "== Nagios $(/usr/sbin/nagios4 --version 2>/dev/null | sed -n 's/^Nagios Core \([0-9.]*\).*/\1/p' | head -1): $SERVICES services due every second, ${SECONDS_RUN}s measured after ${WARMUP}s"
run_nagios check_dummy "$PLUGINS/check_dummy 0 bench"
[ -n "${DUMMY_ONLY:-}" ] && exit 0
run_nagios check_tcp "$PLUGINS/check_tcp -H 127.0.0.1 -p $PORT"

echo "== Recon nagios module (go test -bench, 16 workers)"
cd "$REPO"
RECON_BENCH_TCP_PORT=$PORT go test -run='^$' -bench='Benchmark(CheckDummy|CheckTCP)/workers=16' -benchtime=20000x -benchmem ./sources/nagios/
