#!/usr/bin/env bash
# NetStream fault suite: hostile load against NetStream and against Kestrel's Sockets transport, in one run.
#
#   tests/NetStream.Faults/run.sh            full run (about 15 minutes)
#   tests/NetStream.Faults/run.sh --short    the CI form: every case, smaller and shorter (about 2 minutes)
#
# Options: --only CASE[,CASE...], --runs N (descriptor exhaustion runs per size).
# Prints one line per case and server ("case=... server=netstream|sockets|hosted survived=yes|no figures..."), then
# "verdict: netstream pass|fail (N cases), sockets survived M of K". Exits 1 if a NetStream case misses its goal;
# Kestrel's Sockets transport failing is what the suite shows, not a failure of the run. Results also go to
# out/faults-<time>.txt, progress to stderr. See README.md beside this script for what each case proves.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$HERE/out

SHORT=0 ONLY="" RUNS=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --short) SHORT=1 ;;
        --only) ONLY=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done

ALL_CASES="fd_exhaustion churn resets idle never_read slowloris timeouts half_close sigterm bad_config"
CASES=${ONLY//,/ }
CASES=${CASES:-$ALL_CASES}
for c in $CASES; do
    [[ " $ALL_CASES " == *" $c "* ]] || { echo "unknown case: $c (known: $ALL_CASES)" >&2; exit 2; }
done

if [[ $SHORT -eq 1 ]]; then
    FD_RUNS=${RUNS:-2} FD_HOLD=3 CHURN=5000 RESETS=1000 SETTLE=3 IDLE=1000 NEVER_READ=20 SLOW=200 GOOD=16 HALF=50 LOAD_S=3
else
    FD_RUNS=${RUNS:-10} FD_HOLD=20 CHURN=100000 RESETS=5000 SETTLE=10 IDLE=10000 NEVER_READ=100 SLOW=1000 GOOD=64 HALF=200 LOAD_S=6
fi

log() { echo "[$(date +%T)] $*" >&2; }
fail() { echo "[$(date +%T)] FAIL: $*" >&2; exit 1; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/netstream-faults.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools and builds
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v curl >/dev/null || missing+=(curl)
command -v prlimit >/dev/null || missing+=(util-linux)
command -v taskset >/dev/null || missing+=(util-linux)
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]} with apt-get"
    as_root apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}" >&2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$OUT"
RESULTS=$OUT/faults-$(date +%Y%m%d-%H%M%S).txt
gcc -O2 -Wall -Wextra -o "$OUT/netutil" "$ROOT/tests/NetStream.Benchmarks/c/netutil.c"
gcc -O2 -Wall -Wextra -o "$OUT/echo_client" "$ROOT/tests/NetStream.Benchmarks/c/echo_client.c"
gcc -O2 -Wall -Wextra -o "$OUT/faultclient" "$HERE/c/faultclient.c"
NETUTIL=$OUT/netutil CLIENT=$OUT/faultclient

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
build() {
    dotnet build -c Release -nologo -v q "$1" >"$WORK/build.log" 2>&1 || { grep -E 'error' "$WORK/build.log" | sort -u | head >&2; fail "$1 does not build"; }
    dotnet msbuild "$1" -nologo -getProperty:TargetPath -p:Configuration=Release
}
log "building BenchServer and samples/EchoServer (Release)"
BENCH_DLL=$(build "$ROOT/tests/NetStream.Benchmarks/BenchServer/BenchServer.csproj")
ECHO_DLL=$(build "$ROOT/samples/EchoServer/EchoServer.csproj")

CPUS=$(nproc)
SERVER_CPU=1 CLIENT_CPU=0
[[ $CPUS -lt 2 ]] && SERVER_CPU=0
unset ASPNETCORE_URLS DOTNET_URLS ASPNETCORE_HTTP_PORTS
export ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production

# ---------------------------------------------------------------- servers
# start KIND [LIMIT [extra arguments...]]: sets PID, PORT, SOCK, LOG. KIND: http-netstream, http-sockets (Kestrel,
# "Hello, World!"), echo-hosted (the hosted NetStream echo sample), echo-sockets (Kestrel on Sockets, raw echo).
start() {
    local kind=$1 limit=${2:-} cmd
    shift $(( $# < 2 ? $# : 2 ))
    PORT=$("$NETUTIL" freeport 1) SOCK="$WORK/echo-$RANDOM.sock" LOG="$WORK/server-$RANDOM.log"
    case $kind in
        http-netstream|http-sockets) cmd=(dotnet "$BENCH_DLL" --transport "${kind#http-}" --mode http --port "$PORT") ;;
        echo-sockets) cmd=(dotnet "$BENCH_DLL" --transport sockets --mode echo --port "$PORT") ;;
        echo-hosted) cmd=(dotnet "$ECHO_DLL" "--NetStream:Endpoints:Echo:Url=tcp://127.0.0.1:$PORT"
                          "--NetStream:Endpoints:EchoUnix:Url=unix:$SOCK" "--NetStream:Hooks:MaxConnectionsPerIp=1000000"
                          "--Logging:LogLevel:Default=Warning") ;;
    esac
    [[ -n $limit ]] && cmd=(prlimit "--nofile=$limit:$limit" "${cmd[@]}")
    taskset -c "$SERVER_CPU" "${cmd[@]}" "$@" >"$LOG" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    "$NETUTIL" wait "tcp:$PORT" 60 >/dev/null 2>&1 || { tail -5 "$LOG" >&2; fail "$kind did not start"; }
}
stop() { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
alive() { kill -0 "$PID" 2>/dev/null && echo yes || echo no; }
# utime + stime in clock ticks (fields 14 and 15 of /proc/PID/stat); nothing once the process is gone.
ticks() { awk '{ sub(/.*\) /, ""); split($0, f, " "); print f[12] + f[13] }' "/proc/$PID/stat" 2>/dev/null || true; }
fds() { ls "/proc/$PID/fd" 2>/dev/null | wc -l; }
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$PID/status" 2>/dev/null || echo 0; }
client() { taskset -c "$CLIENT_CPU" "$@"; }
get() { curl -s -m "${2:-1}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null | grep -q 200; }

NS_CASES=0 NS_FAILED=0 SOCKETS_RUNS=0 SOCKETS_SURVIVED=0
# result CASE SERVER PASS(yes|no|-) FIGURES...: one line; PASS counts for NetStream's servers only.
result() {
    local case=$1 server=$2 pass=$3
    shift 3
    echo "case=$case server=$server $*" | tee -a "$RESULTS"
    if [[ $server == sockets ]]; then
        SOCKETS_RUNS=$((SOCKETS_RUNS + 1))
        if [[ " $* " == *" survived=yes "* ]]; then SOCKETS_SURVIVED=$((SOCKETS_SURVIVED + 1)); fi
    elif [[ $pass != - ]]; then
        NS_CASES=$((NS_CASES + 1))
        if [[ $pass != yes ]]; then NS_FAILED=$((NS_FAILED + 1)); log "NetStream missed the goal of $case: $*"; fi
    fi
    return 0
}
wanted() { [[ " $CASES " == *" $1 "* ]]; }

# ---------------------------------------------------------------- cases
# Out of descriptors: Kestrel under ulimit -n 256 holds N idle clients while a prober asks every 0.5 s.
case_fd_exhaustion() {
    local transport server size run idle t0 t1 ok bad first start alive_at_end cpu
    for transport in ${FD_TRANSPORTS:-netstream sockets}; do
        server=$transport
        for size in 150 300; do
            local survived=0 worst_cpu=0 worst_first=0 served_during=0 served_after=0
            for run in $(seq 1 "$FD_RUNS"); do
                start "http-$transport" 256
                # Warm: the window below measures holding back, not the JIT compiling the first requests.
                client "$CLIENT" request "tcp:$PORT" 20 0 >/dev/null || true
                # taskset execs the client: $! is the client itself, which the kill below must reach.
                taskset -c "$CLIENT_CPU" "$NETUTIL" idle "tcp:$PORT" "$size" $((FD_HOLD + 5)) >"$WORK/idle.out" 2>&1 &
                idle=$!
                sleep 2
                t0=$(ticks) ok=0 bad=0
                t0=${t0:-0}
                local end=$((SECONDS + FD_HOLD))
                while [[ $SECONDS -lt $end ]]; do
                    if get "$PORT" 0.4; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
                    sleep 0.1
                done
                t1=$(ticks)
                t1=${t1:-$t0}
                cpu=$(calc "($t1 - $t0) * 100 / $(getconf CLK_TCK) / $FD_HOLD")
                kill -TERM "$idle" 2>/dev/null || true
                wait "$idle" 2>/dev/null || true
                start=$(date +%s%N) first=-1
                for _ in $(seq 1 50); do
                    if get "$PORT" 1; then first=$(( ($(date +%s%N) - start) / 1000000 )); break; fi
                    sleep 0.05
                done
                local after=0
                for _ in 1 2 3 4 5; do get "$PORT" 1 && after=$((after + 1)); sleep 0.2; done
                alive_at_end=$(alive)
                [[ $alive_at_end == yes && $first -ge 0 ]] && survived=$((survived + 1))
                worst_cpu=$(awk -v a="$worst_cpu" -v b="$cpu" 'BEGIN { print (b > a ? b : a) }')
                [[ $first -gt $worst_first ]] && worst_first=$first
                [[ $first -lt 0 ]] && worst_first=-1
                served_during=$((served_during + ok)) served_after=$((served_after + after))
                log "  fd_exhaustion $transport $size run $run: alive=$alive_at_end cpu=${cpu}% first_after_release_ms=$first"
                stop
            done
            local pass=no
            [[ $survived -eq $FD_RUNS ]] && awk -v c="$worst_cpu" 'BEGIN { exit !(c < 5) }' && [[ $worst_first -ge 0 && $worst_first -lt 1000 ]] && pass=yes
            result fd_exhaustion "$server" "$pass" "idle_clients=$size survived=$([[ $survived -eq $FD_RUNS ]] && echo yes || echo no)" \
                "survived_runs=$survived/$FD_RUNS max_cpu_pct=$worst_cpu served_during=$served_during served_after=$served_after" \
                "max_first_after_release_ms=$worst_first"
        done
    done
}

# churn_like NAME MODE COUNT: the load twice, each followed by SETTLE seconds of quiet. Descriptors must come back to
# where they were; memory must not grow from the first settled state to the second (a garbage-collected heap keeps
# some of what a burst took, and NetStream's buffer pool lets idle blocks go after 10 s, so the first settle is the
# baseline for "nothing that does not come back", with room for the collector's own swings: a leak of 1 KiB a
# connection is 100 MiB in the full run).
churn_like() {
    local name=$1 mode=$2 count=$3 transport fd0 rss0 fd1 rss1 fd2 rss2 rss3 fd4 rss4 out
    for transport in netstream sockets; do
        start "http-$transport"
        client "$CLIENT" request "tcp:$PORT" 8 0 >/dev/null
        fd0=$(fds) rss0=$(rss)
        out=$(client "$CLIENT" "$mode" "tcp:$PORT" "$count")
        fd1=$(fds) rss1=$(rss)
        sleep "$SETTLE"
        fd2=$(fds) rss2=$(rss)
        client "$CLIENT" "$mode" "tcp:$PORT" "$count" >/dev/null
        rss3=$(rss)
        sleep "$SETTLE"
        fd4=$(fds) rss4=$(rss)
        local ok=no survived
        survived=$(alive)
        if get "$PORT" 2; then ok=yes; fi
        local pass=no
        if [[ $survived == yes && $ok == yes && $fd2 -le $((fd0 + 4)) && $fd4 -le $((fd0 + 4)) ]] \
            && awk -v a="$rss2" -v b="$rss4" 'BEGIN { exit !(b <= a * 1.25 + 32) }'; then
            pass=yes
        fi
        result "$name" "$transport" "$pass" "survived=$survived served_after=$ok $out" \
            "fds_before/after/settled/settled_again=$fd0/$fd1/$fd2/$fd4 rss_mib_before/after/settled/after_again/settled_again=$rss0/$rss1/$rss2/$rss3/$rss4"
        stop
    done
}
case_churn() { churn_like churn churn "$CHURN"; }
case_resets() { churn_like resets resets "$RESETS"; }

case_idle() {
    local transport rss0 rss1 out
    for transport in netstream sockets; do
        start "http-$transport"
        client "$CLIENT" request "tcp:$PORT" 8 0 >/dev/null
        rss0=$(rss)
        client "$CLIENT" request "tcp:$PORT" "$IDLE" 4 >"$WORK/idle.out" 2>&1 &
        local c=$!
        sleep 3
        rss1=$(rss)
        wait "$c" || true
        out=$(tail -1 "$WORK/idle.out")
        local per=$(calc "($rss1 - $rss0) * 1024 / $IDLE" 2)
        local pass=no
        [[ $out == "served=$IDLE failed=0" ]] && pass=yes
        result idle "$transport" "$pass" "survived=$(alive) connections=$IDLE rss_mib=$rss0/$rss1 kib_per_connection=$per $out"
        stop
    done
}

# Peers that write and never read, against echo servers: RSS must stay bounded; an idle timeout ends them.
case_never_read() {
    local server rss0 rss1 out extra=()
    for server in hosted sockets; do
        if [[ $server == hosted ]]; then
            start echo-hosted "" "--NetStream:IdleTimeout=00:00:03"
        else
            start echo-sockets
        fi
        rss0=$(rss)
        client "$CLIENT" hold "tcp:$PORT" "$NEVER_READ" 8 neverread >"$WORK/nr.out" 2>&1 &
        local c=$!
        sleep 2.5
        rss1=$(rss)
        wait "$c" || true
        out=$(tail -1 "$WORK/nr.out")
        local per=$(calc "($rss1 - $rss0) * 1024 / $NEVER_READ" 0)
        local pass=-
        if [[ $server == hosted ]]; then
            # Per peer at most its input (MaxReadBufferSize, 1 MiB) and what the echo handler wrote before its flush waited
            # (one read: up to 1 MiB more; back-pressure acts at the flush) and MaxWriteBufferSize, and closed by IdleTimeout.
            pass=no
            if [[ $per -le $((1024 + 1024 + 64 + 256)) && $out == "closed=$NEVER_READ of=$NEVER_READ"* ]]; then pass=yes; fi
        fi
        result never_read "$server" "$pass" "survived=$(alive) peers=$NEVER_READ rss_mib=$rss0/$rss1 kib_per_peer=$per $out"
        stop
    done
}

echo_rate() { client "$OUT/echo_client" "tcp:$PORT" "$GOOD" 64 "$LOAD_S" 2>/dev/null | sed -n 's/.*rate=\([0-9.]*\)$/\1/p'; }

# Slow peers (a byte a second) beside good clients: the good clients' rate with and without them.
case_slowloris() {
    local server base loaded
    for server in hosted sockets; do
        if [[ $server == hosted ]]; then start echo-hosted; else start echo-sockets; fi
        base=$(echo_rate)
        client "$CLIENT" hold "tcp:$PORT" "$SLOW" $((LOAD_S + 4)) slow:1 >"$WORK/slow.out" 2>&1 &
        local c=$!
        sleep 2
        loaded=$(echo_rate)
        wait "$c" || true
        local ratio=$(calc "${loaded:-0} / ${base:-1}" 3)
        local pass=-
        if [[ $server == hosted ]]; then
            pass=no
            awk -v r="$ratio" 'BEGIN { exit !(r >= 0.5) }' && pass=yes
        fi
        result slowloris "$server" "$pass" "survived=$(alive) slow_peers=$SLOW good_clients=$GOOD rate_alone=$base rate_beside_slow=$loaded ratio=$ratio"
        stop
    done
}

# FirstByteTimeout and IdleTimeout of the hosted server close silent, stalled and slow peers on time.
case_timeouts() {
    local kind expect out last closed
    start echo-hosted "" "--NetStream:FirstByteTimeout=00:00:02" "--NetStream:IdleTimeout=00:00:02"
    for kind in silent stall slow:4; do
        out=$(client "$CLIENT" hold "tcp:$PORT" "$SLOW" 8 "$kind" | tail -1)
        last=$(sed -n 's/.*last_close_s=\([0-9.]*\).*/\1/p' <<<"$out")
        closed=$(sed -n 's/^closed=\([0-9]*\).*/\1/p' <<<"$out")
        local pass=no
        [[ $closed -eq $SLOW ]] && awk -v l="$last" 'BEGIN { exit !(l <= 2 + 1) }' && pass=yes
        result timeouts hosted "$pass" "survived=$(alive) peers=$SLOW kind=$kind timeout_s=2 $out"
    done
    stop
}

case_half_close() {
    local server out
    for server in hosted sockets; do
        if [[ $server == hosted ]]; then start echo-hosted; else start echo-sockets; fi
        out=$(client "$CLIENT" halfclose "tcp:$PORT" "$HALF" 262144)
        local pass=-
        [[ $server == hosted ]] && { pass=no; [[ $out == "exact=$HALF mismatched=0" ]] && pass=yes; }
        result half_close "$server" "$pass" "survived=$(alive) clients=$HALF bytes=262144 $out"
        stop
    done
}

# SIGTERM while 64 clients echo: nothing that comes back differs from what was sent; the stop is bounded.
case_sigterm() {
    local server out t0 stop_ms gone
    for server in hosted sockets; do
        if [[ $server == hosted ]]; then start echo-hosted; else start echo-sockets; fi
        client "$CLIENT" pingpong "tcp:$PORT" 64 4096 30 >"$WORK/pp.out" 2>&1 &
        local c=$!
        sleep 2
        t0=$(date +%s%N)
        kill -TERM "$PID"
        wait "$PID" 2>/dev/null || true
        stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        wait "$c" || true
        out=$(tail -1 "$WORK/pp.out")
        gone=n/a
        [[ $server == hosted ]] && { [[ -e $SOCK ]] && gone=no || gone=yes; }
        local pass=-
        # The sample drains for its ShutdownTimeout (5 s), then aborts what still runs.
        [[ $server == hosted ]] && { pass=no; [[ $out == *"mismatched=0 "* && $stop_ms -lt 8000 && $gone == yes ]] && pass=yes; }
        result sigterm "$server" "$pass" "stop_ms=$stop_ms unix_socket_file_gone=$gone $out"
    done
}

# Every option invalid in turn: start-up fails, naming the key and the value.
case_bad_config() {
    local row key value named=0 total=0 missed=()
    local rows=(
        "NetStream:Backlog=-1" "NetStream:Backlog=abc" "NetStream:NoDelay=maybe" "NetStream:KeepAlive:Enabled=sometimes"
        "NetStream:KeepAlive:Idle=00:00:00" "NetStream:KeepAlive:Interval=1.00:00:00" "NetStream:KeepAlive:Count=0"
        "NetStream:Cork=2" "NetStream:OobInline=x" "NetStream:ReceiveBufferSize=0" "NetStream:SendBufferSize=-5"
        "NetStream:Linger=-00:00:01" "NetStream:CloseTimeout=00:00:00" "NetStream:ReusePort=perhaps"
        "NetStream:UnixSocketFileMode=999" "NetStream:MaxReadBufferSize=-1" "NetStream:MaxWriteBufferSize=-1"
        "NetStream:WaitForDataBeforeAllocatingBuffer=x" "NetStream:IOQueueCount=-2" "NetStream:Engine=Turbo"
        "NetStream:DescriptorReserve=-1" "NetStream:Hooks:Timeout=00:00:00" "NetStream:Hooks:Allow:0=300.1.1.1"
        "NetStream:Hooks:Deny:0=10.0.0.1/8" "NetStream:Hooks:MaxConnectionsPerIp=0" "NetStream:Hooks:MaxConnectionsPerEndpoint=-3"
        "NetStream:ShutdownTimeout=-00:00:01" "NetStream:MaxConnections=0" "NetStream:FirstByteTimeout=00:00:00"
        "NetStream:IdleTimeout=-00:00:02" "NetStream:Endpoints:Echo:Url=tcp://nohost.example:1"
        "NetStream:Endpoints:Echo:MaxConnections=-1" "NetStream:Endpoints:Echo:Backlog=0" "NetStream:Bogus=1"
    )
    for row in "${rows[@]}"; do
        key=${row%%=*} value=${row#*=}
        total=$((total + 1))
        local out status=0
        out=$(timeout 30 dotnet "$ECHO_DLL" "--$row" "--NetStream:Endpoints:EchoUnix:Url=unix:$WORK/bad.sock" 2>&1) || status=$?
        if [[ $status -ne 0 && $status -ne 124 && $out == *"$key"* && $out == *"$value"* ]]; then
            named=$((named + 1))
        else
            missed+=("$row")
        fi
    done
    local pass=no
    [[ $named -eq $total ]] && pass=yes
    result bad_config hosted "$pass" "options=$total refused_naming_key_and_value=$named${missed[*]:+ missed=${missed[*]}}"
}

log "results in $RESULTS"
for c in $ALL_CASES; do
    if wanted "$c"; then
        log "case $c"
        "case_$c"
    fi
done

verdict=pass
[[ $NS_FAILED -eq 0 ]] || verdict=fail
echo "verdict: netstream $verdict ($NS_CASES cases, $NS_FAILED missed), sockets survived $SOCKETS_SURVIVED of $SOCKETS_RUNS" | tee -a "$RESULTS"
[[ $verdict == pass ]]
