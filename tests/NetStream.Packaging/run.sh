#!/usr/bin/env bash
# Packs NetStream the way a release would and uses the packages the way a new user would:
#   1. dotnet pack -c Release on the solution into a local folder feed (a unique pre-release version per run);
#   2. checks what each package carries (dll, XML docs, README, LICENSE, licence expression, symbols package);
#   3. copies Consumer/ out of the repository, restores it from that feed by PackageReference, builds and runs it;
#   4. one HTTP request to its Kestrel-on-NetStream endpoint and one echo over its hosted NetStream endpoint.
# Prints "packaging: N passed, N failed" last; exits non-zero when a check failed. Run by .ci/run; about a minute.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/netstream-packaging.XXXXXX")
APP_PID=""
PACKAGES_CACHE=${NUGET_PACKAGES:-$HOME/.nuget/packages}
cleanup() {
    [[ -n $APP_PID ]] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
    # The run's own pre-release version leaves the global package cache with the run.
    [[ -n ${VERSION:-} ]] && rm -rf "$PACKAGES_CACHE/netstream.transport/$VERSION" "$PACKAGES_CACHE/netstream.hosting/$VERSION"
    [[ -n ${KEEP_WORK:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT

PASSED=0 FAILED=0
check() { # check NAME COMMAND...: runs the command, counts and prints the outcome
    local name=$1; shift
    if "$@" >>"$WORK/check.log" 2>&1; then
        PASSED=$((PASSED + 1)); echo "pass: $name"
    else
        FAILED=$((FAILED + 1)); echo "FAIL: $name"; tail -20 "$WORK/check.log" | sed 's/^/    /'
    fi
}
finish() { echo "packaging: $PASSED passed, $FAILED failed"; [[ $FAILED -eq 0 ]]; exit $?; }

BASE=$(dotnet msbuild "$ROOT/src/NetStream.Transport/NetStream.Transport.csproj" -nologo -getProperty:Version)
VERSION="$BASE-local.$(date +%Y%m%d%H%M%S)"
FEED=$WORK/feed

if ! dotnet pack "$ROOT/NetStream.sln" -c Release -nologo -v q -p:Version="$VERSION" -o "$FEED" >"$WORK/pack.log" 2>&1; then
    grep -E 'error|warning' "$WORK/pack.log" | sort -u | head -20
    FAILED=1; echo "FAIL: dotnet pack"; finish
fi
PASSED=$((PASSED + 1)); echo "pass: dotnet pack -c Release ($VERSION)"

# Exactly the two libraries, each with its symbols package; nothing else in the solution is packable.
check "the feed holds NetStream.Transport and NetStream.Hosting, each with a .snupkg, and nothing else" \
    bash -c "cd '$FEED' && [ \"\$(ls | sort | tr '\n' ' ')\" = 'NetStream.Hosting.$VERSION.nupkg NetStream.Hosting.$VERSION.snupkg NetStream.Transport.$VERSION.nupkg NetStream.Transport.$VERSION.snupkg ' ]"

for id in NetStream.Transport NetStream.Hosting; do
    nupkg=$FEED/$id.$VERSION.nupkg
    check "$id carries its dll, XML docs, README.md and LICENSE" bash -c "
        files=\$(python3 -c 'import sys, zipfile; print(\"\n\".join(zipfile.ZipFile(sys.argv[1]).namelist()))' '$nupkg')
        for f in lib/net10.0/$id.dll lib/net10.0/$id.xml README.md LICENSE; do
            grep -qx \"\$f\" <<<\"\$files\" || { echo \"missing: \$f\"; exit 1; }
        done"
    check "$id's nuspec: licence expression MIT, readme, description, authors, tags" bash -c "
        nuspec=\$(python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read(next(n for n in z.namelist() if n.endswith(\".nuspec\"))).decode())' '$nupkg')
        for want in '<license type=\"expression\">MIT</license>' '<readme>README.md</readme>' '<description>' '<authors>NetStream contributors</authors>' '<tags>'; do
            grep -qF \"\$want\" <<<\"\$nuspec\" || { echo \"nuspec lacks \$want\"; exit 1; }
        done"
    check "$id's symbols package holds a portable PDB with the sources embedded" bash -c "
        python3 - '$FEED/$id.$VERSION.snupkg' '$id' <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
pdb = z.read(f'lib/net10.0/{sys.argv[2]}.pdb')
assert pdb[:4] == b'BSJB', 'not a portable PDB'
# Embedded sources are stored under this custom debug information GUID (7E4D4708-096E-4C5C-AEDA-CB10BA6A740D).
assert bytes.fromhex('08474d7e6e095c4caedacb10ba6a740d') in pdb, 'no embedded source in the PDB'
PY"
done

# A new user's project, outside the repository, restored from the local feed next to the usual sources.
APP=$WORK/app
cp -r "$HERE/Consumer" "$APP"
cat >"$APP/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="netstream-local" value="$FEED" />
  </packageSources>
</configuration>
XML
check "a fresh project restores and builds NetStream.Hosting $VERSION by PackageReference" \
    dotnet build "$APP/Consumer.csproj" -c Release -nologo -v q -p:NetStreamVersion="$VERSION"
[[ -f $APP/bin/Release/net10.0/Consumer.dll ]] || finish

echo "{\"NetStream\":{\"Endpoints\":{\"Echo\":{\"Url\":\"tcp://127.0.0.1:0\"}}}}" >"$APP/bin/Release/net10.0/appsettings.json"
(cd "$APP/bin/Release/net10.0" && exec dotnet Consumer.dll --urls http://127.0.0.1:0) >"$WORK/app.log" 2>&1 &
APP_PID=$!
# Kestrel logs "Now listening on: http://127.0.0.1:PORT", the hosted server "NetStream endpoint Echo listening on 127.0.0.1:PORT."
for _ in $(seq 1 300); do
    grep -q 'Now listening on' "$WORK/app.log" && grep -q 'endpoint Echo listening' "$WORK/app.log" && break
    kill -0 "$APP_PID" 2>/dev/null || break
    sleep 0.1
done
HTTP_URL=$(sed -n 's/.*Now listening on: \(http:[^ ]*\).*/\1/p' "$WORK/app.log" | head -1)
ECHO_PORT=$(sed -n 's/.*endpoint Echo listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/app.log" | head -1)
check "the app starts: Kestrel and the hosted endpoint report their bound ports" test -n "$HTTP_URL" -a -n "$ECHO_PORT"
[[ -z $HTTP_URL || -z $ECHO_PORT ]] && { sed 's/^/    app: /' "$WORK/app.log" | tail -30; finish; }

check "an HTTP request to Kestrel is served over NetStream's transport" bash -c "
    body=\$(curl -sS --max-time 10 '$HTTP_URL/')
    echo \"response: \$body\"
    [ \"\$body\" = 'served by NetStream.Transport.NetStreamTransportFactory' ]"
check "the hosted NetStream endpoint echoes what it receives" python3 - "$ECHO_PORT" <<'PY'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    payload = b"hello from a package\n" * 100
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while chunk := s.recv(65536):
        got += chunk
    assert got == payload, f"echoed {len(got)} bytes, sent {len(payload)}"
PY
finish
