#!/usr/bin/env bash
# NetStream fault suite: hostile load against NetStream and against Kestrel's Sockets transport, in one run.
#
#   tests/NetStream.Faults/run.sh                full run (about 12 minutes on 2 cores, most of it fd_exhaustion)
#   tests/NetStream.Faults/run.sh --short        the CI form: every case, smaller and shorter (about 2 minutes)
#
# Options: --only CASE[,CASE...]   cases: fd_exhaustion churn idle_10k never_read slowloris half_close
#                                         sigterm_under_load bad_config
#          --runs N                runs per size of fd_exhaustion (default 10, short 2)
#          --engine NAME           NetStream's I/O engine for every NetStream server: epoll or sockets (default: the
#                                  transport's default); set through NetStream__Engine, which the baseline ignores
# Prints one line per case and server: "case=NAME server=netstream|sockets|hosted survived=yes|no goal=met|missed|-
# figures...", then "verdict: netstream pass|fail (N cases, M missed), sockets survived M of K". Exits 1 only if a
# NetStream case misses its goal (Kestrel's Sockets transport failing is reported, not a failure of the run).
# Results also go to out/results-<time>.txt; progress goes to stderr. README.md beside this script explains the cases.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$HERE/out
BENCH=$ROOT/tests/NetStream.Benchmarks

SHORT=0 ONLY="" RUNS=""
usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --short) SHORT=1 ;;
        --only) ONLY=${2:?--only needs a list of cases}; shift ;;
        --runs) RUNS=${2:?--runs needs a number}; shift ;;
        --engine)
            case ${2:?--engine needs epoll or sockets} in
                epoll) export NetStream__Engine=Epoll ;;
                sockets) export NetStream__Engine=Sockets ;;
                *) echo "--engine takes epoll or sockets" >&2; exit 2 ;;
            esac
            shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
[[ -z $RUNS || $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--runs takes a positive number" >&2; exit 2; }

ALL_CASES="fd_exhaustion churn idle_10k never_read slowloris half_close sigterm_under_load bad_config"
CASES=${ONLY//,/ }
CASES=${CASES:-$ALL_CASES}
for c in $CASES; do
    [[ " $ALL_CASES " == *" $c "* ]] || { echo "unknown case: $c (known: $ALL_CASES)" >&2; exit 2; }
done
wanted() { [[ " $CASES " == *" $1 "* ]]; }

# Sizes and durations: full, and the CI form (--short).
if [[ $SHORT -eq 1 ]]; then
    FD_RUNS=${RUNS:-2} FD_HOLD=5 FD_AFTER=2 CHURN=10000 RESETS=1000 SETTLE=3 IDLE=1000 NEVER_READ=20 NR_HOLD=4
    SLOW=200 GOOD=16 RATE_S=2 HALF=50 SIGTERM_CLIENTS=64
else
    FD_RUNS=${RUNS:-10} FD_HOLD=20 FD_AFTER=5 CHURN=100000 RESETS=5000 SETTLE=10 IDLE=10000 NEVER_READ=100 NR_HOLD=10
    SLOW=1000 GOOD=64 RATE_S=5 HALF=200 SIGTERM_CLIENTS=64
fi
FD_LIMIT=256          # the servers' RLIMIT_NOFILE in fd_exhaustion
FD_SIZES="150 300"    # idle clients held against it
TIMEOUT_S=2           # FirstByteTimeout / IdleTimeout of the timeout sub-cases
SHUTDOWN_S=3          # the echo servers' shutdown (drain) timeout in sigterm_under_load

log() { echo "[$(date +%T)] $*" >&2; }
warn() { echo "[$(date +%T)] WARNING: $*" >&2; }
fail() { echo "[$(date +%T)] FAIL: $*" >&2; exit 1; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
# kv KEY TEXT: the value of KEY=value in TEXT (the last one), or the default $3.
kv() { local v; v=$(grep -o "\(^\| \)$1=[^ ]*" <<<"$2" | tail -1 | cut -d= -f2-); echo "${v:-${3:-}}"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---------------------------------------------------------------- clean-up: what we started, and its children
WORK=$(mktemp -d "${TMPDIR:-/tmp}/netstream-faults.XXXXXX")
PIDS=()
descendants() {  # every descendant of pid $1, deepest first
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        descendants "$child"
        echo "$child"
    done
}
cleanup() {
    local pid all=()
    trap - EXIT INT TERM
    mapfile -t all < <(descendants $$)
    for pid in "${all[@]}" "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${all[@]}" "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v taskset >/dev/null || missing+=(util-linux)
command -v prlimit >/dev/null || missing+=(util-linux)
command -v ps >/dev/null || missing+=(procps)
command -v timeout >/dev/null || missing+=(coreutils)
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]} with apt-get"
    as_root apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q $(printf '%s\n' "${missing[@]}" | sort -u) >&2
fi
command -v dotnet >/dev/null || fail "the .NET SDK (dotnet) is not on PATH"

# Descriptors: 10,000 idle connections need more than the usual 1024, in the servers and in the clients.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited && $NOFILE -lt $((IDLE + 512)) ]]; then
    warn "open-file limit is $NOFILE: idle_10k reduced from $IDLE to $((NOFILE - 512)) connections"
    IDLE=$((NOFILE - 512))
fi
CPUS=$(nproc)
CPU_A=1 CPU_B=0   # two servers side by side: NetStream on CPU_A, the baseline on CPU_B
[[ $CPUS -lt 2 ]] && { warn "only $CPUS CPU: everything shares core 0"; CPU_A=0; }
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- build
mkdir -p "$OUT"
STARTED=$(date +%s)
log "compiling the C clients into $OUT"
gcc -O2 -Wall -Wextra -o "$OUT/netutil" "$BENCH/c/netutil.c"
gcc -O2 -Wall -Wextra -o "$OUT/echo_client" "$BENCH/c/echo_client.c"
for prog in peers churn prober echocheck; do
    gcc -O2 -Wall -Wextra -o "$OUT/$prog" "$HERE/c/$prog.c"
done
NETUTIL=$OUT/netutil PEERS=$OUT/peers CHURN_C=$OUT/churn PROBER=$OUT/prober ECHOCHECK=$OUT/echocheck

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# dotnet_build PROJECT: builds in Release, prints the assembly's path; retries while another build holds the files.
dotnet_build() {
    local project=$1 attempt
    for attempt in 1 2 3 4 5 6; do
        if dotnet build -c Release -nologo -v q "$project" -t:Build -getProperty:TargetPath >"$WORK/build.log" 2>&1; then
            grep -E '\.dll$' "$WORK/build.log" | tail -1
            return 0
        fi
        if grep -qE 'MSB3026|MSB3027|MSB3021|being used by another process' "$WORK/build.log" && [[ $attempt -lt 6 ]]; then
            warn "build of $project: files in use (another build?), retrying in 10 s"
            sleep 10
            continue
        fi
        grep -E 'error' "$WORK/build.log" | sort -u | head -20 >&2
        return 1
    done
}
log "building BenchServer and samples/EchoServer (Release)"
BENCH_DLL=$(dotnet_build "$BENCH/BenchServer/BenchServer.csproj") || fail "BenchServer does not build"
ECHO_DLL=$(dotnet_build "$ROOT/samples/EchoServer/EchoServer.csproj") || fail "samples/EchoServer does not build"
log "built in $(( $(date +%s) - STARTED )) s"

# ---------------------------------------------------------------- servers
unset ASPNETCORE_URLS DOTNET_URLS ASPNETCORE_HTTP_PORTS ASPNETCORE_HTTPS_PORTS
export ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production
# Both transports tier up at once (Kestrel's Sockets transport is precompiled, NetStream is not; see the benchmarks' README).
export DOTNET_TC_CallCountingDelayMs=0
declare -A PID PORT SOCK LOGF KEEPER LAUNCHED

# launch NAME KIND CPU LIMIT [ARGS...]: starts a server in the background (LIMIT: RLIMIT_NOFILE, or "-").
# KIND: http-netstream, http-sockets (BenchServer "Hello, World!"), echo-hosted (samples/EchoServer, NetStream's
# generic-host server), echo-sockets, echo-netstream (BenchServer's Kestrel ConnectionHandler echo).
launch() {
    local name=$1 kind=$2 cpu=$3 limit=$4 port
    LAUNCHED[$name]=$(printf '%q ' "$@")
    shift 4
    port=$("$NETUTIL" freeport 1)
    local sock="$WORK/$name.sock"
    local -a cmd
    case $kind in
        http-netstream|http-sockets)
            cmd=(dotnet "$BENCH_DLL" --transport "${kind#http-}" --mode http --port "$port") ;;
        echo-sockets|echo-netstream)
            cmd=(dotnet "$BENCH_DLL" --transport "${kind#echo-}" --mode echo --port "$port" --unix "$sock") ;;
        echo-hosted)
            cmd=(dotnet "$ECHO_DLL" "--NetStream:Endpoints:Echo:Url=tcp://127.0.0.1:$port"
                 "--NetStream:Endpoints:EchoUnix:Url=unix:$sock" "--NetStream:Hooks:MaxConnectionsPerIp=100000"
                 "--Logging:LogLevel:Default=Warning") ;;
        *) fail "unknown server kind $kind" ;;
    esac
    [[ $limit != - ]] && cmd=(prlimit "--nofile=$limit:$limit" "${cmd[@]}")
    # taskset and prlimit exec the server. It runs under a keeper subshell that records its exit status (and keeps
    # bash's "Aborted" notices, for servers that die of a signal, off our stderr).
    rm -f "$WORK/$name.pid" "$WORK/$name.status"
    ( taskset -c "$cpu" "${cmd[@]}" "$@" >"$WORK/$name.log" 2>&1 &
      echo $! >"$WORK/$name.pid"
      wait $! && echo 0 >"$WORK/$name.status" || echo $? >"$WORK/$name.status" ) 2>/dev/null &
    KEEPER[$name]=$!
    PIDS+=($!)
    local i
    for ((i = 0; i < 100; i++)); do [[ -s $WORK/$name.pid ]] && break; sleep 0.02; done
    PID[$name]=$(<"$WORK/$name.pid") PORT[$name]=$port SOCK[$name]=$sock LOGF[$name]=$WORK/$name.log
    PIDS+=("${PID[$name]}")
}
# status NAME: the exit status of a server that ended (after stop), or "" while it runs.
status() { cat "$WORK/$1.status" 2>/dev/null || true; }
# ready NAME: waits until it accepts (60 s at most); returns 1 if it exited or never accepted.
ready() {
    local name=$1 end=$((SECONDS + 60))
    while ! "$NETUTIL" wait "tcp:${PORT[$name]}" 1 >/dev/null 2>&1; do
        if ! kill -0 "${PID[$name]}" 2>/dev/null || [[ $SECONDS -ge $end ]]; then
            return 1
        fi
    done
    # A connect to a port nobody listens on can succeed on loopback, connected to itself: alive is the proof.
    sleep 0.2
    kill -0 "${PID[$name]}" 2>/dev/null
}
# need NAME: waits until it accepts. A port found free may be taken, by a client's ephemeral port, before the server
# binds it: the server is then started again on another.
need() {
    local attempt
    for attempt in 1 2 3; do
        ready "$1" && return 0
        grep -q "address already in use" "${LOGF[$1]}" 2>/dev/null || break
        log "port ${PORT[$1]} was taken before $1 bound it; starting it again"
        eval "launch ${LAUNCHED[$1]}"
    done
    tail -20 "${LOGF[$1]}" >&2
    fail "server $1 did not start"
}
stop() {  # SIGTERM, then SIGKILL after 15 s
    local pid=${PID[$1]} i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "${KEEPER[$1]}" 2>/dev/null || true
}
alive() { kill -0 "${PID[$1]}" 2>/dev/null && echo yes || echo no; }
# utime + stime in clock ticks (fields 14 and 15 of /proc/PID/stat); "" once the process is gone.
ticks() { awk '{ sub(/.*\) /, ""); split($0, f, " "); print f[12] + f[13] }' "/proc/${PID[$1]}/stat" 2>/dev/null || true; }
fds() { local n; n=$(ls "/proc/${PID[$1]}/fd" 2>/dev/null | wc -l) || true; echo "${n:-0}"; }
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/${PID[$1]}/status" 2>/dev/null || echo 0; }
# warm NAME http|echo: a few requests, so the figures after it are not the JIT's first steps.
warm() { "$PROBER" "tcp:${PORT[$1]}" "$2" 0.02 2 1 >/dev/null 2>&1 || true; }
# serving NAME http|echo: "yes" when one request of three, 0.3 s apart, is served.
serving() {
    local out
    out=$("$PROBER" "tcp:${PORT[$1]}" "$2" 0.3 2 1 2>/dev/null) || true
    [[ $(kv served_before "$out" 0) -gt 0 ]] && echo yes || echo no
}
# why NAME: how a server that died went (its log's last word on it).
why() {
    local l=${LOGF[$1]}
    if grep -q 'Out of memory' "$l" 2>/dev/null; then echo out_of_memory
    elif grep -qiE 'unhandled exception' "$l" 2>/dev/null; then echo unhandled_exception
    else echo exited
    fi
}
# wait_line FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN.
wait_line() {
    local end=$((SECONDS + $3))
    until grep -q "$2" "$1" 2>/dev/null; do
        [[ $SECONDS -lt $end ]] || return 1
        sleep 0.05
    done
}

# ---------------------------------------------------------------- results
RESULT_FILE="$OUT/results-$(date +%Y%m%dT%H%M%S).txt"
: >"$RESULT_FILE"
NS_CASES=0 NS_MISSED=0 SK_CASES=0 SK_SURVIVED=0 MISSED=()
# result CASE SERVER SURVIVED GOAL FIGURES...: GOAL is yes/no for NetStream's goals, "-" when the line has none.
result() {
    local case=$1 server=$2 survived=$3 goal=$4 g=-
    shift 4
    case $goal in yes) g=met ;; no) g=missed ;; skipped) g=skipped ;; esac
    echo "case=$case server=$server survived=$survived goal=$g $*" | tee -a "$RESULT_FILE"
    if [[ $server == sockets ]]; then
        SK_CASES=$((SK_CASES + 1))
        if [[ $survived == yes ]]; then SK_SURVIVED=$((SK_SURVIVED + 1)); fi
    elif [[ $goal == yes || $goal == no ]]; then
        NS_CASES=$((NS_CASES + 1))
        if [[ $goal == no ]]; then NS_MISSED=$((NS_MISSED + 1)) MISSED+=("$case/$server"); fi
    fi
    return 0
}
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b + 0 > a + 0) ? b : a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

# ================================================================ fd_exhaustion
# fd_one NAME SIZE: one run against the started server NAME: SIZE idle clients for FD_HOLD s beside a prober, then
# released, FD_AFTER s more of probing. Writes "alive cpu served_during served_after first_ms fds_held" to $WORK/NAME.fd.
fd_one() {
    local name=$1 size=$2 t0 t1 held=0 pp ip out
    warm "$name" http
    "$PEERS" "tcp:${PORT[$name]}" "$size" $((FD_HOLD + 30)) idle >"$WORK/$name.idle" 2>&1 &
    ip=$!
    wait_line "$WORK/$name.idle" '^connected=' 20 || true
    "$PROBER" "tcp:${PORT[$name]}" http 0.5 2 $((FD_HOLD + FD_AFTER + 10)) >"$WORK/$name.probe" 2>&1 &
    pp=$!
    # CPU is measured over the hold but its first second (the server takes what it can, then holds back or spins).
    sleep 1
    t0=$(ticks "$name")
    local t_start f i timeline=""
    t_start=$(now_ms)
    for ((i = 0; i < (FD_HOLD - 1) * 2; i++)); do
        f=$(fds "$name")
        [[ $f -gt $held ]] && held=$f
        sleep 0.5
    done
    t1=$(ticks "$name")
    local window_ms=$(( $(now_ms) - t_start ))
    # The release: the idle clients close, the prober marks the moment.
    kill -TERM "$ip" 2>/dev/null || true
    kill -USR1 "$pp" 2>/dev/null || true
    for ((i = 0; i < FD_AFTER * 4; i++)); do
        timeline+="$(fds "$name") "
        sleep 0.25
    done
    kill -TERM "$pp" 2>/dev/null || true
    wait "$ip" 2>/dev/null || true
    wait "$pp" 2>/dev/null || true
    out=$(tail -1 "$WORK/$name.probe")
    local alive_now served_after first
    alive_now=$(alive "$name")
    served_after=$(kv served_after "$out" 0) first=$(kv first_after_ms "$out" -1)
    [[ $alive_now == yes && $served_after -gt 0 ]] || alive_now=no
    local cpu=na
    [[ -n $t0 && -n $t1 ]] && cpu=$(calc "($t1 - $t0) * 100 / $CLK_TCK / ($window_ms / 1000)")
    cp "$WORK/$name.probe" "$WORK/$name.probe.last"
    log "    $name prober: $out; idle clients: $(head -1 "$WORK/$name.idle"); descriptors every 0.25 s after the release: $timeline"
    echo "$alive_now $cpu $(kv served_before "$out" 0) $served_after $first $held $(kv connected "$(head -1 "$WORK/$name.idle")" 0)" >"$WORK/$name.fd"
}

case_fd_exhaustion() {
    local size run srv
    for size in $FD_SIZES; do
        declare -A runs=() surv=() cpu_max=() cpu_sum=() cpu_n=() during=() after=() first_max=() held_max=() deaths=()
        for srv in netstream sockets; do
            runs[$srv]=0 surv[$srv]=0 cpu_max[$srv]=0 cpu_sum[$srv]=0 cpu_n[$srv]=0 during[$srv]=0 after[$srv]=0 first_max[$srv]=0 held_max[$srv]=0 deaths[$srv]=""
        done
        for ((run = 1; run <= FD_RUNS; run++)); do
            # Both servers side by side, each on its own core, each under ulimit -n FD_LIMIT.
            launch fd-netstream http-netstream "$CPU_A" "$FD_LIMIT"
            launch fd-sockets http-sockets "$CPU_B" "$FD_LIMIT"
            need fd-netstream; need fd-sockets
            fd_one fd-netstream "$size" &
            local p1=$!
            fd_one fd-sockets "$size" &
            local p2=$!
            wait "$p1" "$p2" || true
            for srv in netstream sockets; do
                local a c d af f h con
                read -r a c d af f h con <"$WORK/fd-$srv.fd"
                runs[$srv]=$((runs[$srv] + 1))
                if [[ $a == yes ]]; then
                    surv[$srv]=$((surv[$srv] + 1))
                else
                    local how=not_serving
                    [[ $(alive "fd-$srv") == yes ]] || how=$(why "fd-$srv")
                    deaths[$srv]+="${deaths[$srv]:+,}run$run:$how"
                fi
                # A server that died during the hold has no CPU figure for it (na); the mean is over the others.
                if [[ $c != na ]]; then
                    cpu_max[$srv]=$(max "${cpu_max[$srv]}" "$c") cpu_sum[$srv]=$(calc "${cpu_sum[$srv]} + $c") cpu_n[$srv]=$((cpu_n[$srv] + 1))
                fi
                during[$srv]=$((during[$srv] + d)) after[$srv]=$((after[$srv] + af)) held_max[$srv]=$(max "${held_max[$srv]}" "$h")
                if [[ $f -lt 0 || ${first_max[$srv]} -lt 0 ]]; then first_max[$srv]=-1; else first_max[$srv]=$(max "${first_max[$srv]}" "$f"); fi
                log "  fd_exhaustion idle=$size run $run/$FD_RUNS $srv: alive_and_serving=$a cpu=${c}% served_during=$d served_after=$af first_after_release_ms=$f fds_held=$h idle_connected=$con"
                stop "fd-$srv"
            done
        done
        for srv in netstream sockets; do
            local goal=-
            if [[ $srv == netstream ]]; then
                goal=no
                if [[ ${surv[$srv]} -eq ${runs[$srv]} ]] && lt "${cpu_max[$srv]}" 5 && [[ ${first_max[$srv]} -ge 0 && ${first_max[$srv]} -lt 1000 ]]; then goal=yes; fi
            fi
            result fd_exhaustion "$srv" "$([[ ${surv[$srv]} -eq ${runs[$srv]} ]] && echo yes || echo no)" "$goal" \
                "nofile=$FD_LIMIT idle_clients=$size hold_s=$FD_HOLD runs=${runs[$srv]} survived_runs=${surv[$srv]}" \
                "cpu_pct_max=${cpu_max[$srv]} cpu_pct_mean=$(calc "${cpu_sum[$srv]} / (${cpu_n[$srv]} > 0 ? ${cpu_n[$srv]} : 1)")" \
                "served_during=${during[$srv]} served_after=${after[$srv]} first_after_release_ms_max=${first_max[$srv]}" \
                "fds_held_max=${held_max[$srv]}${deaths[$srv]:+ deaths=${deaths[$srv]}}"
        done
        unset runs surv cpu_max cpu_sum cpu_n during after first_max held_max deaths
    done
}

# ================================================================ churn
# churn_round PORT: one round of connect/close cycles and resets mid-request; prints "RATE_CLOSE RATE_RESET ERRORS".
churn_round() {
    local out c1 c2 errs
    out=$("$CHURN_C" "tcp:$1" "$CHURN" 32 120 close) || true
    c1=$(kv rate "$out" 0) errs=$(($(kv errors "$out" 0) + $(kv not_started "$out" 0)))
    out=$("$CHURN_C" "tcp:$1" "$RESETS" 32 60 reset:http) || true
    c2=$(kv rate "$out" 0) errs=$((errs + $(kv errors "$out" 0) + $(kv not_started "$out" 0)))
    echo "$c1 $c2 $errs"
}

# churn_one NAME: three rounds, each followed by a settle; writes the figures. The collector's heap reaches its working
# size over the first rounds (a first round that happened to leave it small would make round 2 look like growth), so
# growth is judged from round 2 to round 3.
churn_one() {
    local name=$1 port=${PORT[$1]} f0 r0 f1 r1 f2 r2 f3 r3 f4 r4 f5 r5 f6 r6 c1 c2 errs e2 e3
    warm "$name" http
    sleep 1
    f0=$(fds "$name") r0=$(rss "$name")
    read -r c1 c2 errs < <(churn_round "$port")
    f1=$(fds "$name") r1=$(rss "$name")
    sleep "$SETTLE"
    f2=$(fds "$name") r2=$(rss "$name")
    read -r _ _ e2 < <(churn_round "$port")
    f3=$(fds "$name") r3=$(rss "$name")
    sleep "$SETTLE"
    f4=$(fds "$name") r4=$(rss "$name")
    read -r _ _ e3 < <(churn_round "$port")
    f5=$(fds "$name") r5=$(rss "$name")
    sleep "$SETTLE"
    f6=$(fds "$name") r6=$(rss "$name")
    errs=$((errs + e2 + e3))
    echo "$(alive "$name") $(serving "$name" http) $f0 $f1 $f2 $f3 $f4 $f5 $f6 $r0 $r1 $r2 $r3 $r4 $r5 $r6 $c1 $c2 $errs" >"$WORK/$name.churn"
}

case_churn() {
    launch churn-netstream http-netstream "$CPU_A" -
    launch churn-sockets http-sockets "$CPU_B" -
    need churn-netstream; need churn-sockets
    churn_one churn-netstream & local p1=$!
    churn_one churn-sockets & local p2=$!
    wait "$p1" "$p2" || true
    local srv a s f0 f1 f2 f3 f4 f5 f6 r0 r1 r2 r3 r4 r5 r6 c1 c2 errs
    for srv in netstream sockets; do
        read -r a s f0 f1 f2 f3 f4 f5 f6 r0 r1 r2 r3 r4 r5 r6 c1 c2 errs <"$WORK/churn-$srv.churn"
        local goal=- survived=no
        [[ $a == yes && $s == yes ]] && survived=yes
        if [[ $srv == netstream ]]; then
            goal=no
            # Descriptors back to the baseline (+-4) after every round; settled memory does not grow from round 2 to
            # round 3 beyond the collector's own swings (25 % + 32 MiB; NetStream's buffer pool lets idle blocks go
            # after 10 s): a leak of 1 KiB a connection would be 100 MiB in the full run.
            if [[ $survived == yes && $f2 -le $((f0 + 4)) && $f4 -le $((f0 + 4)) && $f6 -le $((f0 + 4)) ]] && le "$r6" "$(calc "$r4 * 1.25 + 32")"; then goal=yes; fi
        fi
        result churn "$srv" "$survived" "$goal" "cycles=$CHURN resets=$RESETS rounds=3 settle_s=$SETTLE" \
            "close_rate=$c1 reset_rate=$c2 client_errors=$errs" \
            "fds_before=$f0 fds_after=$f1 fds_settled=$f2 fds_after2=$f3 fds_settled2=$f4 fds_after3=$f5 fds_settled3=$f6" \
            "rss_mib_before=$r0 rss_mib_after=$r1 rss_mib_settled=$r2 rss_mib_after2=$r3 rss_mib_settled2=$r4 rss_mib_after3=$r5 rss_mib_settled3=$r6"
        stop "churn-$srv"
    done
}

# ================================================================ idle_10k
idle_one() {
    local name=$1 f0 r0 r1 f1 out end
    warm "$name" http
    sleep 1
    f0=$(fds "$name") r0=$(rss "$name")
    "$PEERS" "tcp:${PORT[$name]}" "$IDLE" 120 idle request >"$WORK/$name.idle" 2>&1 &
    local cp=$!
    wait_line "$WORK/$name.idle" '^connected=' 60 || true
    # Until the server holds them all (its descriptors), 30 s at most; then a second for the first reads to settle.
    end=$((SECONDS + 30))
    while [[ $(fds "$name") -lt $((f0 + IDLE)) && $SECONDS -lt $end ]]; do sleep 0.2; done
    sleep 1
    f1=$(fds "$name") r1=$(rss "$name")
    kill -USR1 "$cp" 2>/dev/null || true
    wait "$cp" 2>/dev/null || true
    out=$(tail -1 "$WORK/$name.idle")
    echo "$(alive "$name") $f0 $f1 $r0 $r1 $(kv connected "$(head -1 "$WORK/$name.idle")" 0) $(kv connect_s "$(head -1 "$WORK/$name.idle")" 0) $(kv served "$out" 0) $(kv failed "$out" 0) $(kv request_s "$out" 0)" >"$WORK/$name.idle10k"
}

case_idle_10k() {
    launch idle-netstream http-netstream "$CPU_A" -
    launch idle-sockets http-sockets "$CPU_B" -
    need idle-netstream; need idle-sockets
    idle_one idle-netstream & local p1=$!
    idle_one idle-sockets & local p2=$!
    wait "$p1" "$p2" || true
    local srv a f0 f1 r0 r1 con cs served failed rs
    for srv in netstream sockets; do
        read -r a f0 f1 r0 r1 con cs served failed rs <"$WORK/idle-$srv.idle10k"
        local goal=- survived=$a
        [[ $a == yes && $served -gt 0 ]] || survived=no
        if [[ $srv == netstream ]]; then
            goal=no
            if [[ $survived == yes && $con -eq $IDLE && $served -eq $IDLE ]]; then goal=yes; fi
        fi
        result idle_10k "$srv" "$survived" "$goal" "connections=$IDLE connected=$con connect_s=$cs" \
            "fds_before=$f0 fds_held=$f1 rss_mib_before=$r0 rss_mib_held=$r1" \
            "kib_per_connection=$(calc "($r1 - $r0) * 1024 / $IDLE" 2) served=$served failed=$failed request_round_s=$rs"
        stop "idle-$srv"
    done
}

# ================================================================ never_read
# nr_one NAME MODE [wait]: NEVER_READ peers write (MODE flood:http or flood:echo) and never read, for NR_HOLD s, while
# the server's RSS is sampled; with "wait", the peers then stay until the server has closed them all (bounded).
nr_one() {
    local name=$1 mode=$2 until_closed=${3:-} r0 f0 peak=0 r f1 r1 out cp end
    warm "$name" "${mode#flood:}"
    sleep 1
    r0=$(rss "$name") f0=$(fds "$name")
    "$PEERS" "tcp:${PORT[$name]}" "$NEVER_READ" $((NR_HOLD + TIMEOUT_S + 6)) "$mode" >"$WORK/$name.nr" 2>&1 &
    cp=$!
    wait_line "$WORK/$name.nr" '^connected=' 20 || true
    end=$((SECONDS + NR_HOLD))
    while [[ $SECONDS -lt $end ]]; do
        r=$(rss "$name")
        peak=$(max "$peak" "$r")
        kill -0 "$cp" 2>/dev/null || break
        sleep 0.5
    done
    [[ -n $until_closed ]] || kill -TERM "$cp" 2>/dev/null || true
    wait "$cp" 2>/dev/null || true
    sleep 2
    f1=$(fds "$name") r1=$(rss "$name")
    peak=$(max "$peak" "$r1")   # the heap may still grow as the peers' connections end
    out=$(tail -1 "$WORK/$name.nr")
    echo "$(alive "$name") $(serving "$name" "${mode#flood:}") $r0 $peak $r1 $f0 $f1 $(kv bytes_sent "$out" 0) $(kv closed_fin "$out" 0) $(kv closed_rst "$out" 0) $(kv max_close_after_full_s "$out" 0) $(kv connected "$(head -1 "$WORK/$name.nr")" 0) $(kv never_full "$out" 0)" >"$WORK/$name.nrres"
}

case_never_read() {
    launch nr-netstream http-netstream "$CPU_A" -
    launch nr-sockets http-sockets "$CPU_B" -
    launch nr-hosted echo-hosted "$CPU_A" - "--NetStream:CloseTimeout=00:00:03"
    launch nr-echo-sockets echo-sockets "$CPU_B" -
    launch nr-hosted-idle echo-hosted "$CPU_A" - "--NetStream:CloseTimeout=00:00:03" "--NetStream:IdleTimeout=00:00:0$TIMEOUT_S"
    local n
    for n in nr-netstream nr-sockets nr-hosted nr-echo-sockets nr-hosted-idle; do need "$n"; done
    local -a ps=()
    nr_one nr-netstream flood:http & ps+=($!)
    nr_one nr-sockets flood:http & ps+=($!)
    nr_one nr-hosted flood:echo & ps+=($!)
    nr_one nr-echo-sockets flood:echo & ps+=($!)
    nr_one nr-hosted-idle flood:echo wait & ps+=($!)
    wait "${ps[@]}" || true
    # Bound per peer (KiB): its input (MaxReadBufferSize 1 MiB), what the application wrote before its flush waited
    # (the echo handler writes one read, up to 1 MiB more), MaxWriteBufferSize (64 KiB), and 256 KiB of slack.
    local bound=$((1024 + 1024 + 64 + 256))
    local name server label a s r0 peak r1 f0 f1 sent fin rst maxc con nf
    for name in nr-netstream nr-sockets nr-hosted nr-echo-sockets nr-hosted-idle; do
        read -r a s r0 peak r1 f0 f1 sent fin rst maxc con nf <"$WORK/$name.nrres"
        case $name in
            nr-netstream) server=netstream label="app=http" ;;
            nr-sockets) server=sockets label="app=http" ;;
            nr-hosted) server=hosted label="app=echo close_timeout_s=3" ;;
            nr-echo-sockets) server=sockets label="app=echo" ;;
            nr-hosted-idle) server=hosted label="app=echo close_timeout_s=3 idle_timeout_s=$TIMEOUT_S" ;;
        esac
        local per survived=no goal=-
        per=$(calc "($peak - $r0) * 1024 / $NEVER_READ" 0)
        [[ $a == yes && $s == yes ]] && survived=yes
        if [[ $server != sockets ]]; then
            goal=no
            if [[ $survived == yes && $con -eq $NEVER_READ && $per -le $bound && $f1 -le $((f0 + 4)) ]]; then
                # With IdleTimeout, the server closes every stuck peer while they wait (NR_HOLD + IdleTimeout + 6 s at most).
                # How soon is reported, not judged: bytes still move for a while after a peer's socket is first full (the
                # server fills its input pipe, the echo its output), so the stall's start is not seen from the client;
                # slowloris_stalled times the IdleTimeout exactly.
                if [[ $name != nr-hosted-idle ]] || [[ $((fin + rst)) -eq $NEVER_READ ]]; then goal=yes; fi
            fi
        fi
        result "never_read" "$server" "$survived" "$goal" "$label peers=$NEVER_READ connected=$con hold_s=$NR_HOLD" \
            "bytes_sent=$sent rss_mib_before=$r0 rss_mib_peak=$peak rss_mib_after=$r1 kib_per_peer=$per" \
            "fds_before=$f0 fds_after=$f1 peers_never_full=$nf closed_by_server=$((fin + rst)) closed_fin=$fin closed_rst=$rst" \
            "close_after_full_s_max=$maxc"
        stop "$name"
    done
}

# ================================================================ slowloris
# rate NAME: messages/s of GOOD echo clients (64 bytes, RATE_S seconds) on CPU_B; 0 if they failed.
rate() {
    local out
    out=$(taskset -c "$CPU_B" "$OUT/echo_client" "tcp:${PORT[$1]}" "$GOOD" 64 "$RATE_S" 2>&1) || true
    local r
    r=$(kv rate "$out" 0)
    [[ $r == 0 ]] && log "  echo clients against $1: $(tail -1 <<<"$out")"
    echo "$r"
}

case_slowloris() {
    local name server alone with slow_out cp
    launch sl-hosted echo-hosted "$CPU_A" -
    launch sl-sockets echo-sockets "$CPU_A" -
    launch sl-netstream echo-netstream "$CPU_A" -
    # The timeout sub-cases' server starts now too (it idles until its turn).
    launch sl-timeouts echo-hosted "$CPU_A" - "--NetStream:Endpoints:Echo:FirstByteTimeout=00:00:0$TIMEOUT_S" \
        "--NetStream:Endpoints:Echo:IdleTimeout=00:00:0$TIMEOUT_S"
    for name in sl-hosted sl-sockets sl-netstream; do need "$name"; done
    for name in sl-hosted sl-sockets sl-netstream; do
        case $name in sl-hosted) server=hosted ;; sl-sockets) server=sockets ;; sl-netstream) server=netstream ;; esac
        "$OUT/echo_client" "tcp:${PORT[$name]}" "$GOOD" 64 1 >/dev/null 2>&1 || true   # warm-up
        alone=$(rate "$name")
        taskset -c "$CPU_B" "$PEERS" "tcp:${PORT[$name]}" "$SLOW" $((RATE_S + 40)) slow:1 >"$WORK/$name.slow" 2>&1 &
        cp=$!
        wait_line "$WORK/$name.slow" '^connected=' 30 || true
        with=$(rate "$name")
        kill -TERM "$cp" 2>/dev/null || true
        wait "$cp" 2>/dev/null || true
        slow_out=$(cat "$WORK/$name.slow")
        local survived=no goal=- con closed
        con=$(kv connected "$(head -1 <<<"$slow_out")" 0)
        closed=$(( $(kv closed_fin "$slow_out" 0) + $(kv closed_rst "$slow_out" 0) ))
        [[ $(alive "$name") == yes && $(serving "$name" echo) == yes ]] && survived=yes
        if [[ $server != sockets ]]; then
            goal=no
            # Survives, keeps every slow peer (no timeout set), and still serves the good clients beside them.
            if [[ $survived == yes && $con -eq $SLOW && $closed -eq 0 ]] && lt 0 "$with"; then goal=yes; fi
        fi
        result slowloris "$server" "$survived" "$goal" "slow_peers=$SLOW slow_connected=$con slow_closed_by_server=$closed" \
            "good_clients=$GOOD rate_alone=$alone rate_beside_slow=$with ratio=$(calc "$with / ($alone > 0 ? $alone : 1)" 3)"
        stop "$name"
    done

    # FirstByteTimeout / IdleTimeout of the hosted server (per endpoint): silent, stalled and slow peers, at once.
    if ! ready sl-timeouts; then
        if grep -qi 'unknown key' "${LOGF[sl-timeouts]}"; then
            local sub
            for sub in silent stalled slow_4s; do
                result "slowloris_$sub" hosted - skipped "reason=FirstByteTimeout/IdleTimeout_unknown_to_this_NetStream"
            done
            return 0
        fi
        tail -20 "${LOGF[sl-timeouts]}" >&2
        fail "the hosted echo server with timeouts did not start"
    fi
    local -a kinds=(idle stall slow:4) subs=(silent stalled slow_4s) ps=()
    local i
    for i in 0 1 2; do
        "$PEERS" "tcp:${PORT[sl-timeouts]}" "$SLOW" $((TIMEOUT_S + 8)) "${kinds[$i]}" >"$WORK/to-$i.out" 2>&1 &
        ps+=($!)
    done
    wait "${ps[@]}" || true
    local survived
    survived=$(alive sl-timeouts)
    [[ $survived == yes && $(serving sl-timeouts echo) == yes ]] || survived=no
    for i in 0 1 2; do
        local out con closed maxc goal=no
        out=$(cat "$WORK/to-$i.out")
        con=$(kv connected "$(head -1 <<<"$out")" 0)
        closed=$(( $(kv closed_fin "$out" 0) + $(kv closed_rst "$out" 0) ))
        maxc=$(kv max_close_s "$out" 0)
        if [[ $survived == yes && $con -eq $SLOW && $closed -eq $SLOW ]] && le "$maxc" $((TIMEOUT_S + 1)); then goal=yes; fi
        result "slowloris_${subs[$i]}" hosted "$survived" "$goal" "peers=$SLOW behaviour=${kinds[$i]} first_byte_timeout_s=$TIMEOUT_S" \
            "idle_timeout_s=$TIMEOUT_S connected=$con closed_by_server=$closed closed_fin=$(kv closed_fin "$out" 0)" \
            "closed_rst=$(kv closed_rst "$out" 0) close_after_last_byte_s_max=$maxc close_after_last_byte_s_min=$(kv min_close_s "$out" 0)"
    done
    stop sl-timeouts
}

# ================================================================ half_close
case_half_close() {
    local name server
    local -a names=(hc-hosted hc-sockets hc-netstream) ps=()
    launch hc-hosted echo-hosted "$CPU_A" -
    launch hc-sockets echo-sockets "$CPU_B" -
    launch hc-netstream echo-netstream "$CPU_A" -
    for name in "${names[@]}"; do need "$name"; done
    for name in "${names[@]}"; do
        "$ECHOCHECK" "tcp:${PORT[$name]}" halfclose "$HALF" 262144 60 >"$WORK/$name.hc" 2>&1 &
        ps+=($!)
    done
    wait "${ps[@]}" || true
    for name in "${names[@]}"; do
        local out survived goal=-
        out=$(tail -1 "$WORK/$name.hc")
        case $name in hc-hosted) server=hosted ;; hc-sockets) server=sockets ;; hc-netstream) server=netstream ;; esac
        survived=$(alive "$name")
        if [[ $server != sockets ]]; then
            goal=no
            if [[ $survived == yes && $(kv exact "$out" 0) -eq $HALF ]]; then goal=yes; fi
        fi
        result half_close "$server" "$survived" "$goal" "clients=$HALF bytes_each=262144 exact=$(kv exact "$out" 0)" \
            "mismatched=$(kv mismatched "$out" -) short=$(kv short "$out" -) reset=$(kv reset "$out" -)" \
            "unfinished=$(kv unfinished "$out" -) seconds=$(kv seconds "$out" -)"
        stop "$name"
    done
}

# ================================================================ sigterm_under_load
st_one() {
    local name=$1 cp t0 t1 status i
    "$ECHOCHECK" "tcp:${PORT[$name]}" stream "$SIGTERM_CLIENTS" 65536 $((SHUTDOWN_S + 25)) >"$WORK/$name.st" 2>&1 &
    cp=$!
    sleep 2
    # SIGTERM to the server and, at the same moment, "finish" to half of the clients.
    t0=$(now_ms)
    kill -TERM "${PID[$name]}" 2>/dev/null || true
    kill -USR1 "$cp" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do [[ -s $WORK/$name.status ]] && break; sleep 0.025; done
    t1=$(now_ms)
    status=$(status "$name")
    [[ -n $status ]] || { kill -KILL "${PID[$name]}" 2>/dev/null || true; status=killed; }
    wait "$cp" 2>/dev/null || true
    echo "$((t1 - t0)) $status $([[ -e ${SOCK[$name]} ]] && echo no || echo yes)" >"$WORK/$name.stres"
}

case_sigterm_under_load() {
    launch st-hosted echo-hosted "$CPU_A" - "--NetStream:ShutdownTimeout=00:00:0$SHUTDOWN_S"
    launch st-sockets echo-sockets "$CPU_B" - "--shutdownTimeoutSeconds=$SHUTDOWN_S"
    need st-hosted; need st-sockets
    "$NETUTIL" wait "unix:${SOCK[st-hosted]}" 10 >/dev/null 2>&1 || warn "st-hosted: no Unix socket at ${SOCK[st-hosted]}"
    st_one st-hosted & local p1=$!
    st_one st-sockets & local p2=$!
    wait "$p1" "$p2" || true
    local name server stop_ms status gone out
    for name in st-hosted st-sockets; do
        read -r stop_ms status gone <"$WORK/$name.stres"
        out=$(tail -1 "$WORK/$name.st")
        server=hosted
        [[ $name == st-sockets ]] && server=sockets
        local goal=- survived=yes fe fin
        fe=$(kv finished_exact "$out" 0) fin=$(kv finishing "$out" -1)
        # "survived": stopped cleanly (exit 0) within the shutdown timeout + 2 s, every finishing client served exactly.
        [[ $status == 0 && $stop_ms -le $(( (SHUTDOWN_S + 2) * 1000 )) && $fe -eq $fin && $(kv mismatched "$out" 1) -eq 0 ]] || survived=no
        if [[ $server == hosted ]]; then
            goal=no
            if [[ $survived == yes && $gone == yes && $(kv open "$out" 1) -eq 0 ]]; then goal=yes; fi
        fi
        result sigterm_under_load "$server" "$survived" "$goal" "clients=$SIGTERM_CLIENTS shutdown_timeout_s=$SHUTDOWN_S" \
            "stop_ms=$stop_ms exit_status=$status unix_socket_file_gone=$gone mismatched=$(kv mismatched "$out" -)" \
            "finishing=$fin finished_exact=$fe finishing_lost=$(kv finishing_lost "$out" -)" \
            "streaming_fin=$(kv streaming_fin "$out" -) streaming_rst=$(kv streaming_rst "$out" -)" \
            "open_at_end=$(kv open "$out" -) last_end_ms=$(kv last_end_ms "$out" -) bytes_echoed=$(kv bytes_echoed "$out" -)"
    done
}

# ================================================================ bad_config
# One invalid value per row: start-up must fail (exit non-zero, within 15 s) and the output must name key and value.
BAD_ROWS=(
    "NetStream:Backlog=-1" "NetStream:Backlog=abc" "NetStream:NoDelay=maybe" "NetStream:KeepAlive:Enabled=sometimes"
    "NetStream:KeepAlive:Idle=00:00:00" "NetStream:KeepAlive:Interval=10:00:00" "NetStream:KeepAlive:Count=0"
    "NetStream:Cork=2" "NetStream:OobInline=x" "NetStream:ReceiveBufferSize=0" "NetStream:SendBufferSize=-5"
    "NetStream:Linger=-00:00:01" "NetStream:CloseTimeout=00:00:00" "NetStream:ReuseAddress=sometimes"
    "NetStream:ReusePort=perhaps" "NetStream:UnixSocketFileMode=999" "NetStream:MaxReadBufferSize=-1"
    "NetStream:MaxWriteBufferSize=-1" "NetStream:WaitForDataBeforeAllocatingBuffer=x" "NetStream:IOQueueCount=-2"
    "NetStream:DescriptorReserve=-1" "NetStream:Engine=Turbo" "NetStream:Hooks:Timeout=00:00:00"
    "NetStream:Hooks:Allow:0=300.1.1.1" "NetStream:Hooks:Deny:0=10.0.0.1/8" "NetStream:Hooks:MaxConnectionsPerIp=0"
    "NetStream:Hooks:MaxConnectionsPerEndpoint=-3" "NetStream:ProxyProtocol:Mode=Sometimes"
    "NetStream:ProxyProtocol:HeaderTimeout=00:00:00" "NetStream:ProxyProtocol:TrustedProxies:0=999.0.0.0/8"
    "NetStream:ShutdownTimeout=-00:00:01" "NetStream:MaxConnections=0" "NetStream:FirstByteTimeout=00:00:00"
    "NetStream:IdleTimeout=-00:00:02" "NetStream:Endpoints:Echo:Url=tcp://nohost:1"
    "NetStream:Endpoints:Echo:MaxConnections=-1" "NetStream:Endpoints:Echo:Backlog=0"
    "NetStream:Endpoints:Echo:IdleTimeout=soon" "NetStream:Bogus=1"
)
bad_one() {  # bad_one INDEX ROW: writes "status ms named" to $WORK/bad-INDEX
    local i=$1 row=$2 key=${2%%=*} value=${2#*=} t0 status=0 named=no
    local port
    port=$("$NETUTIL" freeport 1)
    t0=$(now_ms)
    # The Echo endpoint is set first so that a row may override it.
    # (In a subshell whose stderr is dropped: bash's own "Aborted" notice when the server ends on SIGABRT.)
    ( timeout 15 dotnet "$ECHO_DLL" "--NetStream:Endpoints:Echo:Url=tcp://127.0.0.1:$port" \
        "--NetStream:Endpoints:EchoUnix:Url=unix:$WORK/bad-$i.sock" "--$row" >"$WORK/bad-$i.log" 2>&1 </dev/null; exit $? ) 2>/dev/null || status=$?
    if grep -qiF -- "$key" "$WORK/bad-$i.log" && grep -qF -- "$value" "$WORK/bad-$i.log"; then named=yes; fi
    echo "$status $(( $(now_ms) - t0 )) $named" >"$WORK/bad-$i"
}

case_bad_config() {
    local i total=${#BAD_ROWS[@]} refused=0 named=0 max_ms=0 missed=() status ms nm
    local -a ps=()
    # Three at a time; each is a process that should exit during start-up.
    for ((i = 0; i < total; i++)); do
        bad_one "$i" "${BAD_ROWS[$i]}" &
        ps+=($!)
        if [[ ${#ps[@]} -ge 3 ]]; then wait "${ps[@]}" || true; ps=(); fi
    done
    [[ ${#ps[@]} -gt 0 ]] && { wait "${ps[@]}" || true; }
    for ((i = 0; i < total; i++)); do
        read -r status ms nm <"$WORK/bad-$i"
        max_ms=$(max "$max_ms" "$ms")
        if [[ $status -ne 0 && $status -ne 124 ]]; then refused=$((refused + 1)); fi
        if [[ $status -ne 0 && $status -ne 124 && $nm == yes ]]; then
            named=$((named + 1))
        else
            missed+=("${BAD_ROWS[$i]}(exit=$status,named=$nm)")
            log "  bad_config ${BAD_ROWS[$i]}: exit $status after ${ms} ms, key and value named: $nm; output:"
            grep -v '^\s*at ' "$WORK/bad-$i.log" | head -8 | sed 's/^/      /' >&2
        fi
    done
    local goal=no statuses
    [[ $named -eq $total ]] && goal=yes
    statuses=$(for ((i = 0; i < total; i++)); do cut -d' ' -f1 "$WORK/bad-$i"; done | sort -n | uniq -c | awk '{ printf "%s%sx%s", sep, $2, $1; sep = "," }')
    result bad_config hosted n/a "$goal" "options=$total refused=$refused refused_naming_key_and_value=$named exit_statuses=$statuses" \
        "slowest_exit_ms=$max_ms${missed[*]:+ missed=$(IFS=,; echo "${missed[*]}")}"
}

# ================================================================ run
log "cases: $CASES; $([[ $SHORT -eq 1 ]] && echo short || echo full) form; open-file limit $NOFILE; results also in $RESULT_FILE"
for c in $ALL_CASES; do
    if wanted "$c"; then
        log "case $c"
        t_case=$SECONDS
        "case_$c"
        log "case $c done in $((SECONDS - t_case)) s"
    fi
done
verdict=pass
[[ $NS_MISSED -eq 0 ]] || verdict=fail
echo "verdict: netstream $verdict ($NS_CASES cases, $NS_MISSED missed), sockets survived $SK_SURVIVED of $SK_CASES" | tee -a "$RESULT_FILE"
[[ ${#MISSED[@]} -eq 0 ]] || log "NetStream missed: ${MISSED[*]}"
log "done in $(( $(date +%s) - STARTED )) s"
[[ $verdict == pass ]]
