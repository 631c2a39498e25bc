#!/usr/bin/env bash
# Restarts under load (issue "Zero-downtime restarts and accept sharding"): replaces the server through the listener
# handoff while clients churn, keep alive, speak HTTP/2, wait on 2-second requests and stream echoes, and counts every
# client error; then two controls that must show errors on the same counters: a plain stop-then-start, and an
# SO_REUSEPORT overlap restart (net.ipv4.tcp_migrate_req off).
#
#   tests/NetStream.Restarts/run.sh           a handoff every second for 60 s
#   tests/NetStream.Restarts/run.sh --full    full form: a handoff every 300 ms for 120 s (a successor is started only
#                                             once the one before it has started: about every 1.3 s on 2 cores)
#   tests/NetStream.Restarts/run.sh --short   short form (CI): a handoff every second for 20 s
#
# Prints one line per case with its counts, and last "restarts: N passed, N failed". Installs wrk (a Debian package)
# if missing. The HTTP/2 load is H2Client (HttpClient): h2load counts a GOAWAY as a failed request and, in duration
# mode, never reconnects, so it cannot follow a server that is replaced.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v python3 >/dev/null || missing+=(python3)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "installing ${missing[*]} with apt-get" >&2
    as_root apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}" >&2
fi
ulimit -n 65536 2>/dev/null || true

dlls=()
for project in "$HERE/RestartServer/RestartServer.csproj" "$HERE/H2Client/H2Client.csproj"; do
    if ! dotnet build -c Release -nologo -v q "$project" >/tmp/netstream-restarts-build.log 2>&1; then
        grep -E 'error' /tmp/netstream-restarts-build.log | sort -u | head -20
        echo "restarts: 0 passed, 1 failed"
        exit 1
    fi
    dlls+=("$(dotnet msbuild "$project" -nologo -getProperty:TargetPath -p:Configuration=Release)")
done
exec python3 "$HERE/run.py" --server "${dlls[0]}" --h2client "${dlls[1]}" "$@"
