#!/usr/bin/env bash
# NetStream benchmark harness: every scenario against NetStream and Kestrel's Sockets transport, in one run.
#
#   tests/NetStream.Benchmarks/run.sh            full run: warm-up, 5 rounds of 6 s, A-B-B-A (< 15 minutes)
#   tests/NetStream.Benchmarks/run.sh --quick    smoke check: every scenario once, 2 s each
#
# Options: --rounds N, --duration SECONDS, --warmup SECONDS, --only NAME[,NAME...], --idle-connections N,
#          --jit settled|default (default settled: both .NET servers tier up at once; see README.md),
#          --r2r (the .NET servers are published with ReadyToRun and run from that; see README.md),
#          --cold (no warm-up at all: the first scenario measures freshly started servers; with --jit default),
#          --engine NAME[,NAME] (NetStream:Engine of the NetStream servers: epoll or sockets, default epoll;
#          two engines: every scenario runs both against the same baseline, about 1.4 times as long).
# Results go to stdout (one line per scenario and engine, see README.md) and to out/results-<time>.txt;
# progress and warnings go to stderr. Environment: SERVER_CPU (default 1), CLIENT_CPU (default 0),
# ECHO_SERVER_PROJECT (the NetStream echo server to build and run; default samples/EchoServer).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$HERE/out

ROUNDS=5 DURATION=6 WARMUP=3 FIRST_WARMUP=8 IDLE_CONNS=10000 ONLY="" QUICK=0 JIT=settled R2R=0 ENGINE_LIST=epoll
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) QUICK=1 ROUNDS=1 DURATION=2 WARMUP=1 FIRST_WARMUP=2 ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --only) ONLY=$2; shift ;;
        --idle-connections) IDLE_CONNS=$2; shift ;;
        --jit) JIT=$2; shift ;;
        --r2r) R2R=1 ;;
        --cold) WARMUP=0 FIRST_WARMUP=0 ;;
        --engine) ENGINE_LIST=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

ALL_SCENARIOS="http1_keepalive http1_pipelined http1_churn http1_unix raw_echo_64b raw_echo_4k idle_10k aa_http1_keepalive"
SCENARIOS=${ONLY//,/ }
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
for s in $SCENARIOS; do
    [[ " $ALL_SCENARIOS " == *" $s "* ]] || { echo "unknown scenario: $s (known: $ALL_SCENARIOS)" >&2; exit 2; }
done
wanted() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# NetStream engines: ENGINES holds the labels as given (epoll, sockets), ENGINE_ENUM the NetStream:Engine values.
ENGINES=() ENGINE_ENUM=()
for e in ${ENGINE_LIST//,/ }; do
    case ${e,,} in
        epoll) ENGINES+=(epoll) ENGINE_ENUM+=(Epoll) ;;
        sockets) ENGINES+=(sockets) ENGINE_ENUM+=(Sockets) ;;
        *) echo "unknown engine: $e (epoll or sockets)" >&2; exit 2 ;;
    esac
done
if [[ ${#ENGINES[@]} -lt 1 || ${#ENGINES[@]} -gt 2 ]]; then
    echo "--engine takes one or two engines (e.g. epoll or epoll,sockets), not '$ENGINE_LIST'" >&2
    exit 2
fi
NE=${#ENGINES[@]}

log() { echo "[$(date +%T)] $*" >&2; }
warn() { echo "[$(date +%T)] WARNING: $*" >&2; }
fail() { echo "[$(date +%T)] FAIL: $*" >&2; exit 1; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# ---------------------------------------------------------------- clean-up: our servers and clients only
WORK=$(mktemp -d "${TMPDIR:-/tmp}/netstream-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v taskset >/dev/null || missing+=(util-linux)
# strace is only for the system-call count of http1_keepalive, which is skipped (with a note) without it.
optional=()
wanted http1_keepalive && ! command -v strace >/dev/null && optional+=(strace)
if [[ ${#missing[@]} -gt 0 || ${#optional[@]} -gt 0 ]]; then
    log "installing ${missing[*]} ${optional[*]} with apt-get"
    as_root apt-get update -q >&2
    if [[ ${#missing[@]} -gt 0 ]]; then
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}" >&2
    fi
    if [[ ${#optional[@]} -gt 0 ]]; then
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${optional[@]}" >&2 \
            || warn "could not install ${optional[*]}: no system-call count"
    fi
fi
command -v dotnet >/dev/null || fail "the .NET SDK (dotnet) is not on PATH"

# File descriptors: 10,000 idle connections need more than the usual 1024, in the server and in the client.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
if [[ $FD_LIMIT != unlimited && $FD_LIMIT -lt $((IDLE_CONNS + 512)) ]]; then
    warn "open-file limit is $FD_LIMIT: idle scenario reduced from $IDLE_CONNS to $((FD_LIMIT - 512)) connections"
    IDLE_CONNS=$((FD_LIMIT - 512))
fi

CPUS=$(nproc)
SERVER_CPU=${SERVER_CPU:-1} CLIENT_CPU=${CLIENT_CPU:-0}
if [[ $CPUS -lt 2 ]]; then
    warn "only $CPUS CPU: server and load generator share core 0 (numbers will not mean much)"
    SERVER_CPU=0 CLIENT_CPU=0
fi
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- build
mkdir -p "$OUT"
log "compiling the C load client, reference echo server and helpers into $OUT"
for prog in echo_client echo_server netutil; do
    gcc -O2 -Wall -Wextra -o "$OUT/$prog" "$HERE/c/$prog.c"
done
NETUTIL=$OUT/netutil

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# Builds a project in Release; waits and retries when a concurrent build holds the files (MSB3026/MSB3027).
dotnet_build() {
    local project=$1 attempt
    for attempt in 1 2 3 4 5 6; do
        if dotnet build -c Release -nologo -v q "$project" >"$WORK/build.log" 2>&1; then
            return 0
        fi
        if grep -qE 'MSB3026|MSB3027|MSB3021|being used by another process' "$WORK/build.log" && [[ $attempt -lt 6 ]]; then
            warn "build of $project: files in use (another build?), retrying in 20 s"
            sleep 20
            continue
        fi
        grep -E 'error|Error' "$WORK/build.log" | sort -u | head -20 >&2
        return 1
    done
}
target_path() { dotnet msbuild "$1" -nologo -getProperty:TargetPath -p:Configuration=Release; }
# With --r2r, a project is published with ReadyToRun (framework-dependent, linux-x64) and run from there, as the
# README's production section publishes an application; prints the published dll.
r2r_publish() {
    local project=$1 name dir
    name=$(basename "$project" .csproj)
    dir=$OUT/r2r/$name
    dotnet publish -c Release -nologo -v q -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
        -o "$dir" "$project" >"$WORK/publish.log" 2>&1 || { grep -E 'error' "$WORK/publish.log" | sort -u | head -20 >&2; return 1; }
    echo "$dir/$name.dll"
}

log "building BenchServer (Release)"
dotnet_build "$HERE/BenchServer/BenchServer.csproj" || fail "BenchServer does not build"
BENCH_DLL=$(target_path "$HERE/BenchServer/BenchServer.csproj")
if [[ $R2R -eq 1 ]]; then
    log "publishing BenchServer with ReadyToRun"
    BENCH_DLL=$(r2r_publish "$HERE/BenchServer/BenchServer.csproj") || fail "BenchServer does not publish with ReadyToRun"
fi

# The NetStream side of raw echo is the hosted samples/EchoServer; BenchServer's own echo is the fallback.
NOTES=()
# ECHO_SERVER_PROJECT overrides which project that is (for trying the harness against another echo server).
ECHO_PROJECT=${ECHO_SERVER_PROJECT:-$(find "$ROOT/samples/EchoServer" -maxdepth 1 -name '*.csproj' 2>/dev/null | head -1 || true)}
ECHO_DLL=""
if wanted raw_echo_64b || wanted raw_echo_4k; then
    if [[ -n $ECHO_PROJECT ]]; then
        log "building ${ECHO_PROJECT#"$ROOT"/} (Release)"
        if dotnet_build "$ECHO_PROJECT"; then
            ECHO_DLL=$(target_path "$ECHO_PROJECT")
            if [[ $R2R -eq 1 ]]; then
                ECHO_DLL=$(r2r_publish "$ECHO_PROJECT") || fail "${ECHO_PROJECT#"$ROOT"/} does not publish with ReadyToRun"
            fi
            [[ -n ${ECHO_SERVER_PROJECT:-} ]] && NOTES+=("note: raw echo on NetStream uses ECHO_SERVER_PROJECT=$ECHO_SERVER_PROJECT")
        else
            NOTES+=("note: samples/EchoServer does not build; raw echo on NetStream uses BenchServer --mode echo --transport netstream instead")
        fi
    else
        NOTES+=("note: samples/EchoServer not found; raw echo on NetStream uses BenchServer --mode echo --transport netstream instead")
    fi
fi

# ---------------------------------------------------------------- servers
declare -A PID PORT SOCK
unset ASPNETCORE_URLS DOTNET_URLS ASPNETCORE_HTTP_PORTS ASPNETCORE_HTTPS_PORTS
export ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production

# The runtime delays tiering up while it still JIT-compiles new methods. Kestrel's Sockets transport ships
# precompiled (ReadyToRun) in the shared framework, NetStream does not: on a saturated core its hot paths can
# run unoptimized for tens of seconds, and the run would measure the JIT, not the transport. "settled" lets
# both servers tier up as soon as methods are hot; "default" keeps the runtime's behaviour.
case $JIT in
    settled) JIT_ENV=(env DOTNET_TC_CallCountingDelayMs=0) ;;
    default) JIT_ENV=(env) ;;
    *) echo "unknown --jit mode: $JIT (settled or default)" >&2; exit 2 ;;
esac
if [[ $R2R -eq 1 ]]; then NOTES+=("note: jit=$JIT, ReadyToRun"); else NOTES+=("note: jit=$JIT"); fi

# start NAME KIND PORT [ENGINE]: KIND is http-netstream, http-sockets, echo-netstream, echo-sockets or echo-c;
# ENGINE (Epoll or Sockets, the NetStream:Engine value) is required for the NetStream kinds.
start() {
    local name=$1 kind=$2 port=$3 engine=${4:-} sock="$WORK/$1.sock"
    local -a cmd
    if [[ $kind == *-netstream && -z $engine ]]; then
        fail "start $name: no engine for a NetStream server"
    fi
    case $kind in
        http-netstream)
            cmd=("${JIT_ENV[@]}" dotnet "$BENCH_DLL" --transport netstream --mode http --port "$port" --unix "$sock"
                 "--NetStream:Engine=$engine") ;;
        http-sockets)
            cmd=("${JIT_ENV[@]}" dotnet "$BENCH_DLL" --transport sockets --mode http --port "$port" --unix "$sock") ;;
        echo-sockets)
            cmd=("${JIT_ENV[@]}" dotnet "$BENCH_DLL" --transport sockets --mode echo --port "$port") ;;
        echo-netstream)
            if [[ -n $ECHO_DLL ]]; then
                cmd=("${JIT_ENV[@]}" dotnet "$ECHO_DLL" "--NetStream:Endpoints:Echo:Url=tcp://127.0.0.1:$port"
                     "--NetStream:Endpoints:EchoUnix:Url=unix:$sock" "--NetStream:Engine=$engine"
                     "--Logging:LogLevel:Default=Warning")
            else
                cmd=("${JIT_ENV[@]}" dotnet "$BENCH_DLL" --transport netstream --mode echo --port "$port"
                     "--NetStream:Engine=$engine")
            fi ;;
        echo-c)
            cmd=("$OUT/echo_server" "tcp:$port") ;;
    esac
    taskset -c "$SERVER_CPU" "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
    PID[$name]=$!
    PIDS+=($!)
    PORT[$name]=$port
    SOCK[$name]=$sock
    if ! "$NETUTIL" wait "tcp:$port" 60 || ! kill -0 "${PID[$name]}" 2>/dev/null; then
        tail -20 "$WORK/$name.log" >&2
        fail "server $name (${cmd[*]}) did not start"
    fi
    if [[ $kind == http-* ]] && ! "$NETUTIL" wait "unix:$sock" 30; then
        fail "server $name does not accept on its Unix socket $sock"
    fi
}

stop() {
    local pid=${PID[$1]}
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

alive() { kill -0 "${PID[$1]}" 2>/dev/null || { tail -20 "$WORK/$1.log" >&2; fail "server $1 died"; }; }

cpu_ticks() {  # utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat)
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $(( ${12} + ${13} ))
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- load: load SCENARIO SERVER SECONDS -> "rate count"
client() { taskset -c "$CLIENT_CPU" "$@"; }

parse_wrk() {  # wrk output on stdin, scenario in $1
    awk -v scenario="$1" '
        / requests in / { count = $1 }
        /^Requests\/sec:/ { rate = $2 }
        /Non-2xx or 3xx responses/ { bad = $NF }
        /Socket errors:/ { errors = $0 }
        END {
            if (bad > 0) { print "FAIL: " bad " non-2xx responses" > "/dev/stderr"; exit 1 }
            if (count == 0) { print "FAIL: no request completed" > "/dev/stderr"; exit 1 }
            if (errors != "" && scenario != "http1_churn") print "WARNING: wrk " errors > "/dev/stderr"
            print rate, count
        }'
}

load() {
    local scenario=$1 name=$2 seconds=$3 url="http://127.0.0.1:${PORT[$2]}/" out="$WORK/load.out"
    case $scenario in
        http1_keepalive|aa_http1_keepalive)
            client wrk -t1 -c64 -d"${seconds}s" --timeout 5s "$url" >"$out" 2>&1 || { cat "$out" >&2; fail "wrk failed"; }
            parse_wrk "$scenario" <"$out" ;;
        http1_pipelined)
            client wrk -t1 -c64 -d"${seconds}s" --timeout 5s -s "$HERE/pipeline.lua" "$url" -- 16 >"$out" 2>&1 \
                || { cat "$out" >&2; fail "wrk failed"; }
            parse_wrk "$scenario" <"$out" ;;
        http1_churn)
            client wrk -t1 -c32 -d"${seconds}s" --timeout 5s -H "Connection: close" "$url" >"$out" 2>&1 \
                || { cat "$out" >&2; fail "wrk failed"; }
            parse_wrk "$scenario" <"$out" ;;
        http1_unix)
            client h2load --h1 -B "unix:${SOCK[$name]}" -c64 -t1 -D "$seconds" http://localhost/ >"$out" 2>&1 \
                || { cat "$out" >&2; fail "h2load failed"; }
            awk '
                /^finished in/ { rate = $4 }
                /^requests:/ { ok = $8; failed = $10; errored = $12 }
                END {
                    if (ok == 0) { print "FAIL: h2load: no request succeeded" > "/dev/stderr"; exit 1 }
                    if (failed + errored > 0) print "WARNING: h2load: " failed " failed, " errored " errored" > "/dev/stderr"
                    print rate, ok
                }' "$out" ;;
        raw_echo_64b|raw_echo_4k)
            local size=64
            [[ $scenario == raw_echo_4k ]] && size=4096
            client "$OUT/echo_client" "tcp:${PORT[$name]}" 64 "$size" "$seconds" >"$out" 2>&1 \
                || { cat "$out" >&2; fail "echo client failed against $name"; }
            sed -n 's/^messages=\([0-9]*\) .* rate=\([0-9.]*\)$/\2 \1/p' "$out" ;;
    esac || { cat "$out" >&2; fail "$scenario against $name: cannot read the load generator's output"; }
}

# measure SCENARIO SERVER: one measured run -> appends "rate cpu_us_per_req" to $WORK/res/SCENARIO.SERVER
measure() {
    local scenario=$1 name=$2 pid=${PID[$2]} t0 t1 rate count
    t0=$(cpu_ticks "$pid")
    read -r rate count < <(load "$scenario" "$name" "$DURATION")
    t1=$(cpu_ticks "$pid")
    alive "$name"
    [[ -n ${count:-} && $count -gt 0 ]] || fail "$scenario against $name: no requests counted"
    echo "$rate $(calc "($t1 - $t0) * 1000000 / $CLK_TCK / $count")" >>"$WORK/res/$scenario.$name"
    log "  $scenario $name: $rate/s, $(tail -1 "$WORK/res/$scenario.$name" | cut -d' ' -f2) us CPU per request"
}

# run_rounds SCENARIO SERVER...: a warm-up per server, then ROUNDS rounds, each round's order the previous one
# rotated by one, so no server always goes first: with two servers A-B, B-A, A-B, ... (A-B-B-A); with three
# A-B-C, B-C-A, C-A-B, ... (each server in each place once every three rounds).
run_rounds() {
    local scenario=$1 name round
    shift
    local -a order=("$@")
    mkdir -p "$WORK/res"
    if [[ $WARMUP -gt 0 ]]; then
        log "$scenario: warm-up ${WARMUP}s per server ($*)"
        for name in "$@"; do
            load "$scenario" "$name" "$WARMUP" >/dev/null
        done
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        for name in "${order[@]}"; do
            measure "$scenario" "$name"
        done
        order=("${order[@]:1}" "${order[0]}")
    done
}

median() {  # median of column $2 of file $1
    cut -d' ' -f"$2" "$1" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

RESULTS=()
emit() {  # emit SCENARIO LABEL SERVER_A SERVER_B ENGINE: ENGINE is the NetStream engine of SERVER_A (or "baseline")
    local a="$WORK/res/$1.$3" b="$WORK/res/$1.$4" ra rb
    ra=$(median "$a" 1) rb=$(median "$b" 1)
    RESULTS+=("scenario=$2 engine=$5 netstream=$(calc "$ra" 1) baseline=$(calc "$rb" 1) ratio=$(calc "$ra / $rb" 3) cpu_us_per_req_netstream=$(calc "$(median "$a" 2)") cpu_us_per_req_baseline=$(calc "$(median "$b" 2)")")
    log "${RESULTS[-1]}"
}

# first_warmup SCENARIO SERVER...: a fresh .NET server runs its code cold (tier-0 JIT, no PGO) for a few
# seconds; this load brings every server to the same steady state before any scenario measures it.
first_warmup() {
    local scenario=$1 name
    shift
    [[ $FIRST_WARMUP -gt 0 ]] || return 0
    log "first warm-up: ${FIRST_WARMUP}s of $scenario per server ($*)"
    for name in "$@"; do
        load "$scenario" "$name" "$FIRST_WARMUP" >/dev/null
    done
}

# ---------------------------------------------------------------- system calls per request
# syscalls SERVER LABEL: strace -c -f attached to the running server (every thread: -p PID with -f attaches
# all of a process's threads, and -f follows the ones it creates), SYSCALL_REQUESTS keep-alive requests from
# h2load, then detached; appends the line to SYSCALLS. Returns 1 when strace cannot attach.
SYSCALL_REQUESTS=20000
SYSCALLS=()
syscalls() {
    local name=$1 label=$2 pid=${PID[$1]} spid deadline threads done_n total top
    local st="$WORK/strace.$1" out="$WORK/syscalls.$1.h2load"
    taskset -c "$SERVER_CPU" strace -c -f -o "$st.out" -p "$pid" 2>"$st.err" &
    spid=$!
    PIDS+=($spid)
    deadline=$((SECONDS + 30))
    until grep -q "Process $pid attached" "$st.err" 2>/dev/null; do
        if ! kill -0 "$spid" 2>/dev/null || [[ $SECONDS -ge $deadline ]]; then
            kill -INT "$spid" 2>/dev/null || true
            wait "$spid" 2>/dev/null || true
            warn "strace could not attach to $name: $(grep -v attached "$st.err" | head -3 | tr '\n' ' ')"
            return 1
        fi
        sleep 0.1
    done
    sleep 0.5   # the attach message comes first; let strace finish seizing every thread
    threads=$(sed -n "s/.*Process $pid attached with \([0-9]*\) threads.*/\1/p" "$st.err" | head -1)
    log "  syscalls $name: strace attached to ${threads:-1} thread(s); the process has $(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)"
    client h2load --h1 -n "$SYSCALL_REQUESTS" -c 64 -t 1 "http://127.0.0.1:${PORT[$name]}/" >"$out" 2>&1 \
        || { cat "$out" >&2; kill -INT "$spid" 2>/dev/null || true; fail "h2load failed against $name under strace"; }
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true   # strace exits with the signal's status once it has detached
    alive "$name"
    done_n=$(awk '/^requests:/ { print $8 }' "$out")
    [[ ${done_n:-0} -gt 0 ]] || { cat "$out" >&2; fail "h2load: no request succeeded against $name under strace"; }
    [[ $done_n -eq $SYSCALL_REQUESTS ]] || warn "h2load under strace: $done_n of $SYSCALL_REQUESTS requests succeeded against $name"
    # strace -c rows: "% time, seconds, usecs/call, calls, [errors], syscall": calls is field 4, the name the last.
    awk '/^%|^-|^ *$/ { next } $NF == "total" || NF < 5 { next } { calls[$NF] += $4 } END { for (c in calls) print calls[c], c }' \
        "$st.out" | sort -k1,1nr >"$st.calls"
    [[ -s $st.calls ]] || { cat "$st.out" "$st.err" >&2; fail "strace counted no system call in $name"; }
    total=$(awk '{ t += $1 } END { print t }' "$st.calls")
    top=$(head -5 "$st.calls" | awk -v n="$done_n" '{ printf "%s%s:%.2f", (NR > 1 ? "," : ""), $2, $1 / n }')
    SYSCALLS+=("syscalls scenario=http1_keepalive engine=$label requests=$done_n syscalls_per_req=$(calc "$total / $done_n") top=$top")
    log "${SYSCALLS[-1]}"
}

# ---------------------------------------------------------------- run
log "rounds=$ROUNDS duration=${DURATION}s warm-up=${WARMUP}s; server on CPU $SERVER_CPU, load generator on CPU $CLIENT_CPU; fd limit $FD_LIMIT; engine(s) ${ENGINES[*]}"
STARTED=$(date +%s)
# Ports: the HTTP servers (NE NetStream, sk, sk2), then the echo servers (NE NetStream, esk, ec).
mapfile -t P < <("$NETUTIL" freeport $((2 * NE + 4)))
# One NetStream server per engine in every scenario: NS (HTTP), ENS (echo), INS (idle), index i runs ENGINES[i].
NS=() ENS=() INS=()
for ((i = 0; i < NE; i++)); do
    NS+=("ns$((i + 1))") ENS+=("ens$((i + 1))") INS+=("ins$((i + 1))")
done
if [[ $NE -eq 2 && ${ENGINES[0]} == "${ENGINES[1]}" ]]; then
    NOTES+=("note: engine ${ENGINES[0]} given twice: its two lines per scenario are an A/A of two NetStream processes")
fi

if wanted http1_keepalive || wanted http1_pipelined || wanted http1_churn || wanted http1_unix || wanted aa_http1_keepalive; then
    log "starting the HTTP servers"
    for ((i = 0; i < NE; i++)); do
        start "${NS[i]}" http-netstream "${P[i]}" "${ENGINE_ENUM[i]}"
    done
    start sk http-sockets "${P[NE]}"
    if wanted aa_http1_keepalive; then
        # A/A first, while both Sockets servers have the same history.
        start sk2 http-sockets "${P[NE + 1]}"
        first_warmup http1_keepalive "${NS[@]}" sk sk2
        run_rounds aa_http1_keepalive sk sk2
        emit aa_http1_keepalive aa_http1_keepalive sk sk2 baseline
        AA_LINE=${RESULTS[-1]}
        unset 'RESULTS[-1]'
        stop sk2
    else
        first_warmup http1_keepalive "${NS[@]}" sk
    fi
    for s in http1_keepalive http1_pipelined http1_churn http1_unix; do
        wanted $s || continue
        run_rounds $s "${NS[@]}" sk
        for ((i = 0; i < NE; i++)); do
            emit $s $s "${NS[i]}" sk "${ENGINES[i]}"
        done
    done
    # System calls per request: after the rate rounds (strace slows a server many times over), warm servers.
    if wanted http1_keepalive; then
        if command -v strace >/dev/null; then
            log "http1_keepalive: system calls of $SYSCALL_REQUESTS requests per server under strace -c -f"
            for name in "${NS[@]}" sk; do
                if [[ $name == sk ]]; then label=baseline; else label=${ENGINES[${name#ns} - 1]}; fi
                if ! syscalls "$name" "$label"; then
                    SYSCALLS=()
                    NOTES+=("note: strace cannot attach to the servers here: no syscalls lines")
                    break
                fi
            done
        else
            NOTES+=("note: strace is not installed: no syscalls lines")
        fi
    fi
    for name in "${NS[@]}"; do stop "$name"; done
    stop sk
fi

REFERENCE=()
if wanted raw_echo_64b || wanted raw_echo_4k; then
    log "starting the echo servers ($([[ -n $ECHO_DLL ]] && echo "samples/EchoServer" || echo "BenchServer echo") on NetStream (${ENGINES[*]}), BenchServer echo on Sockets, C epoll echo)"
    for ((i = 0; i < NE; i++)); do
        start "${ENS[i]}" echo-netstream "${P[NE + 2 + i]}" "${ENGINE_ENUM[i]}"
    done
    start esk echo-sockets "${P[2 * NE + 2]}"
    start ec echo-c "${P[2 * NE + 3]}"
    first_warmup raw_echo_64b "${ENS[@]}" esk
    for s in raw_echo_64b raw_echo_4k; do
        wanted $s || continue
        run_rounds $s "${ENS[@]}" esk ec
        rc=$(median "$WORK/res/$s.ec" 1)
        for ((i = 0; i < NE; i++)); do
            emit $s $s "${ENS[i]}" esk "${ENGINES[i]}"
            REFERENCE+=("reference=c_epoll_echo scenario=$s engine=${ENGINES[i]} rate=$(calc "$rc" 1) cpu_us_per_req=$(calc "$(median "$WORK/res/$s.ec" 2)") netstream_share=$(calc "$(median "$WORK/res/$s.${ENS[i]}" 1) / $rc" 3) baseline_share=$(calc "$(median "$WORK/res/$s.esk" 1) / $rc" 3)")
            log "${REFERENCE[-1]}"
        done
    done
    for name in "${ENS[@]}"; do stop "$name"; done
    stop esk; stop ec
fi

# Idle connections: a fresh server per measurement, IDLE_CONNS connections opened and held; VmRSS once the
# server has accepted them all. The CPU column is CPU time per accepted connection.
idle_once() {  # idle_once NAME KIND [ENGINE]
    local name=$1 kind=$2 engine=${3:-} port t0 cpid fds deadline
    port=$("$NETUTIL" freeport 1)
    start "$name" "$kind" "$port" "$engine"
    t0=$(cpu_ticks "${PID[$name]}")
    taskset -c "$CLIENT_CPU" "$NETUTIL" idle "tcp:$port" "$IDLE_CONNS" 300 >"$WORK/idle.out" 2>&1 &
    cpid=$!
    PIDS+=($cpid)
    deadline=$((SECONDS + 120))
    while :; do
        fds=$(find "/proc/${PID[$name]}/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        [[ $fds -ge $IDLE_CONNS ]] && grep -q '^connected=' "$WORK/idle.out" && break
        kill -0 "$cpid" 2>/dev/null || { cat "$WORK/idle.out" >&2; fail "idle client failed against $name"; }
        alive "$name"
        [[ $SECONDS -lt $deadline ]] || fail "$name accepted only $fds of $IDLE_CONNS idle connections in 120 s"
        sleep 0.2
    done
    sleep 1   # let the accepted connections settle (first reads posted, pools grown)
    local rss t1
    rss=$(rss_mib "${PID[$name]}") t1=$(cpu_ticks "${PID[$name]}")
    kill -TERM "$cpid"
    wait "$cpid" || { cat "$WORK/idle.out" >&2; fail "idle connections to $name were closed while held"; }
    stop "$name"
    mkdir -p "$WORK/res"
    echo "$rss $(calc "($t1 - $t0) * 1000000 / $CLK_TCK / $IDLE_CONNS")" >>"$WORK/res/idle_10k.$name"
    log "  idle_10k $name: $rss MiB with $IDLE_CONNS connections ($(sed -n 's/.*seconds=//p' "$WORK/idle.out") s to connect)"
}

if wanted idle_10k; then
    idle_rounds=$((ROUNDS < 3 ? ROUNDS : 3))
    log "idle_10k: $idle_rounds round(s), fresh servers, $IDLE_CONNS idle connections each"
    order=("${INS[@]}" isk)   # rotated every round, as in run_rounds
    for ((round = 1; round <= idle_rounds; round++)); do
        for name in "${order[@]}"; do
            if [[ $name == isk ]]; then
                idle_once isk http-sockets
            else
                i=$(( ${name#ins} - 1 ))
                idle_once "$name" http-netstream "${ENGINE_ENUM[i]}"
            fi
        done
        order=("${order[@]:1}" "${order[0]}")
    done
    for ((i = 0; i < NE; i++)); do
        emit idle_10k idle_10k "${INS[i]}" isk "${ENGINES[i]}"
    done
fi

# ---------------------------------------------------------------- report
RESULT_FILE="$OUT/results-$(date +%Y%m%dT%H%M%S).txt"
{
    printf '%s\n' "${RESULTS[@]}"
    [[ -n ${AA_LINE:-} ]] && echo "$AA_LINE"
    [[ ${#REFERENCE[@]} -gt 0 ]] && printf '%s\n' "${REFERENCE[@]}"
    [[ ${#SYSCALLS[@]} -gt 0 ]] && printf '%s\n' "${SYSCALLS[@]}"
    [[ ${#NOTES[@]} -gt 0 ]] && printf '%s\n' "${NOTES[@]}"
    true
} | tee "$RESULT_FILE"
log "done in $(( $(date +%s) - STARTED )) s (rounds=$ROUNDS, ${DURATION}s each); results also in $RESULT_FILE"
