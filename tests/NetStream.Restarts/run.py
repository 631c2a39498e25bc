"""Restarts under load: the driver of run.sh (see there). Python 3.11, standard library only."""
import argparse, asyncio, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("--server", required=True)
parser.add_argument("--h2client", required=True)
form = parser.add_mutually_exclusive_group()
form.add_argument("--short", action="store_true")
form.add_argument("--full", action="store_true")
args = parser.parse_args()
INTERVAL, DURATION = (1.0, 20.0) if args.short else (0.3, 120.0) if args.full else (1.0, 60.0)
CONTROL_CYCLES = 4
WORK = tempfile.mkdtemp(prefix="netstream-restarts.")
UNIX = os.path.join(WORK, "http.sock")
HANDOFF = os.path.join(WORK, "handoff.sock")
results = []  # (case, passed)


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def tcp_ext():
    """ListenOverflows and ListenDrops of /proc/net/netstat (what nstat shows as TcpExtListen*)."""
    lines = [l.split() for l in open("/proc/net/netstat") if l.startswith("TcpExt:")]
    values = dict(zip(lines[0][1:], map(int, lines[1][1:])))
    return values["ListenOverflows"], values["ListenDrops"]


def free_ports(count):
    # Port 0, read back, released: the ports the first server binds (it binds them itself, not a fixed port).
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Server:
    """One RestartServer process; its console log goes to a file, read for the lines that say it started."""

    count = 0

    def __init__(self, ports, handoff=True, reuse_port=False):
        Server.count += 1
        self.log_path = os.path.join(WORK, f"server-{Server.count}.log")
        p4, p6, ph2, pecho = ports
        argv = ["dotnet", args.server,
                f"--Kestrel:Endpoints:V4:Url=http://127.0.0.1:{p4}",
                f"--Kestrel:Endpoints:V6:Url=http://[::1]:{p6}",
                f"--Kestrel:Endpoints:Unix:Url=http://unix:{UNIX}",
                f"--Kestrel:Endpoints:H2:Url=http://127.0.0.1:{ph2}",
                "--Kestrel:Endpoints:H2:Protocols=Http2",
                f"--NetStream:Endpoints:Echo:Url=tcp://127.0.0.1:{pecho}",
                "--NetStream:Endpoints:Echo:AcceptShards=4",
                "--NetStream:FirstByteTimeout=00:01:00",
                "--Logging:Console:FormatterName=simple"]
        if handoff:
            argv.append(f"--NetStream:Handoff:Path={HANDOFF}")
        if reuse_port:
            argv.append("--NetStream:ReusePort=true")
        env = dict(os.environ, DOTNET_CONSOLE_ANSI_COLOR="false", Logging__Console__DisableColors="true")
        self.process = subprocess.Popen(argv, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT, env=env)

    def wait_started(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Application started" in open(self.log_path).read():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def fds(self):
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


class Counts:
    def __init__(self):
        self.c = dict(refused=0, reset=0, slow_connects=0, bad=0, non2xx=0, ok=0)
        self.connections = 0  # HTTP/2 connections the client opened (more than its 4: it followed the handoffs)

    def add(self, key, n=1):
        self.c[key] += n


async def timed_connect(counts, factory):
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(factory(), 10)
    except ConnectionRefusedError:
        counts.add("refused")
        return None
    except (ConnectionResetError, asyncio.TimeoutError, OSError):
        counts.add("reset")
        return None
    if time.monotonic() - started > 1:
        counts.add("slow_connects")
    return reader, writer


async def echo_client(port, counts, stop):
    """A connection that streams to the 4-socket echo group and checks every byte that comes back."""
    while not stop.is_set():
        pair = await timed_connect(counts, lambda: asyncio.open_connection("127.0.0.1", port))
        if pair is None:
            await asyncio.sleep(0.05)
            continue
        reader, writer = pair
        try:
            for i in range(200):
                if stop.is_set():
                    break
                chunk = (f"{id(writer)}:{i}:" + "x" * 200 + "\n").encode()
                writer.write(chunk)
                await writer.drain()
                back = await asyncio.wait_for(reader.readexactly(len(chunk)), 10)
                if back != chunk:
                    counts.add("bad")
                    break
                counts.add("ok")
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError):
            counts.add("reset")
        except asyncio.TimeoutError:
            counts.add("bad")
        finally:
            writer.close()


async def slow_client(counts, stop):
    """Requests that take 2 s, over the Unix socket: some are running whenever a process is told to stop."""
    while not stop.is_set():
        pair = await timed_connect(counts, lambda: asyncio.open_unix_connection(UNIX))
        if pair is None:
            await asyncio.sleep(0.05)
            continue
        reader, writer = pair
        try:
            writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            response = await asyncio.wait_for(reader.read(), 15)
            if not response.startswith(b"HTTP/1.1 200"):
                counts.add("non2xx" if response.startswith(b"HTTP/1.1") else "bad")
            elif b"slow" not in response.split(b"\r\n\r\n", 1)[-1]:
                counts.add("bad")
            else:
                counts.add("ok")
        except (ConnectionResetError, BrokenPipeError):
            counts.add("reset")
        except asyncio.TimeoutError:
            counts.add("bad")
        finally:
            writer.close()


def parse_wrk(text, counts):
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        counts.add("refused", int(m[1]))
        counts.add("reset", int(m[2]) + int(m[3]))
        counts.add("bad", int(m[4]))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        counts.add("non2xx", int(m[1]))
    if m := re.search(r"(\d+) requests in", text):
        counts.add("ok", int(m[1]))
    else:
        counts.add("bad")


def parse_h2client(text, counts):
    m = re.search(r"h2client: ok=(\d+) errors=(\d+) non2xx=(\d+) bad=(\d+) connections=(\d+)", text)
    if not m:
        counts.add("bad")
        return
    counts.add("ok", int(m[1]))
    counts.add("reset", int(m[2]))
    counts.add("non2xx", int(m[3]))
    counts.add("bad", int(m[4]))
    counts.connections = int(m[5])


async def load(ports, seconds, restart, tools=("churn", "keepalive", "h2", "slow", "echo")):
    """Runs every client for `seconds` while `restart` (a coroutine) replaces the server; returns the counts per client."""
    p4, p6, ph2, pecho = ports
    counts = {name: Counts() for name in tools}
    stop = asyncio.Event()
    procs = {}
    if "churn" in tools:
        procs["churn"] = await asyncio.create_subprocess_exec(
            "wrk", "-t1", "-c256", f"-d{int(seconds)}s", "--timeout", "5s", "-H", "Connection: close",
            f"http://127.0.0.1:{p4}/", stdout=asyncio.subprocess.PIPE)
    if "keepalive" in tools:
        procs["keepalive"] = await asyncio.create_subprocess_exec(
            "wrk", "-t1", "-c64", f"-d{int(seconds)}s", "--timeout", "5s", f"http://[::1]:{p6}/", stdout=asyncio.subprocess.PIPE)
    if "h2" in tools:
        procs["h2"] = await asyncio.create_subprocess_exec(
            "dotnet", args.h2client, f"http://127.0.0.1:{ph2}/", "4", "8", str(int(seconds)), stdout=asyncio.subprocess.PIPE)
    tasks = []
    if "slow" in tools:
        tasks += [asyncio.create_task(slow_client(counts["slow"], stop)) for _ in range(8)]
    if "echo" in tools:
        tasks += [asyncio.create_task(echo_client(pecho, counts["echo"], stop)) for _ in range(64)]
    restarts = await restart(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    for name, proc in procs.items():
        out = (await proc.communicate())[0].decode(errors="replace")
        (parse_wrk if name != "h2" else parse_h2client)(out, counts[name])
    return counts, restarts


def line(case, counts, extra):
    total = {k: sum(c.c[k] for c in counts.values()) for k in Counts().c}
    fields = " ".join(f"{k}={v}" for k, v in total.items())
    per = " ".join(f"{name}_{k}={v}" for name, c in counts.items() for k, v in c.c.items() if v or k == "ok")
    print(f"case={case} {fields} {per} {extra}", flush=True)
    return total


def main():
    ports = free_ports(4)
    log(f"ports {ports}, work {WORK}; handoff every {INTERVAL}s for {DURATION}s")
    servers = [Server(ports)]
    if not servers[0].wait_started():
        print(open(servers[0].log_path).read()[-3000:])
        print("restarts: 0 passed, 1 failed")
        return 1

    async def handoffs(seconds):
        done = failed = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            began = time.monotonic()
            successor = Server(ports)
            if await asyncio.to_thread(successor.wait_started):
                done += 1
            else:
                failed += 1
                log(f"a successor did not start: {open(successor.log_path).read()[-800:]}")
            servers.append(successor)
            await asyncio.sleep(max(0.0, INTERVAL - (time.monotonic() - began)))
        return done, failed

    overflows_before = tcp_ext()
    counts, (done, failed) = asyncio.run(load(ports, DURATION, handoffs))
    overflows_after = tcp_ext()
    survivor = servers[-1]
    time.sleep(3)  # the last slow requests end, the old processes finish draining
    fds_end = survivor.fds()
    exited = sum(1 for s in servers[:-1] if s.process.wait(timeout=60) is not None)
    listen = (overflows_after[0] - overflows_before[0], overflows_after[1] - overflows_before[1])
    total = line("handoff", counts, f"handoffs={done} handoffs_failed={failed} old_exited={exited}/{len(servers) - 1} "
                 f"listen_overflows={listen[0]} listen_drops={listen[1]} fds_end={fds_end} "
                 f"h2_connections={counts['h2'].connections} churn_per_s={counts['churn'].c['ok'] / DURATION:.0f}")
    # The survivor's descriptors: the same again after a second load-free look (nothing leaks per connection).
    time.sleep(1)
    fds_again = survivor.fds()
    ok = (all(total[k] == 0 for k in ("refused", "reset", "slow_connects", "bad", "non2xx")) and failed == 0 and done > 0
          and listen == (0, 0) and exited == len(servers) - 1 and abs(fds_again - fds_end) <= 2
          and all(c.c["ok"] > 0 for c in counts.values()) and counts["h2"].connections > 4)
    results.append(("handoff", ok))
    survivor.stop()

    # Control 1: stop, then start. The clients must see it (refusals, resets), or the counters see nothing.
    servers = [Server(ports, handoff=False)]
    servers[0].wait_started()

    async def stop_then_start(seconds):
        for _ in range(CONTROL_CYCLES):
            await asyncio.sleep(seconds / (CONTROL_CYCLES + 1))
            await asyncio.to_thread(servers[-1].stop)
            servers.append(Server(ports, handoff=False))
            await asyncio.to_thread(servers[-1].wait_started)
        return CONTROL_CYCLES, 0

    counts, _ = asyncio.run(load(ports, 8, stop_then_start, tools=("churn", "echo")))
    total = line("control_stop_then_start", counts, f"restarts={CONTROL_CYCLES}")
    results.append(("control_stop_then_start", total["refused"] + total["reset"] > 0))
    servers[-1].stop()

    # Control 2: SO_REUSEPORT overlap: the new process binds beside the old one, then the old one stops; connections
    # completed in the old socket's queue are reset unless net.ipv4.tcp_migrate_req moves them.
    migrate = open("/proc/sys/net/ipv4/tcp_migrate_req").read().strip() if os.path.exists("/proc/sys/net/ipv4/tcp_migrate_req") else "absent"
    servers = [Server(ports, handoff=False, reuse_port=True)]
    servers[0].wait_started()

    async def overlap(seconds):
        for _ in range(CONTROL_CYCLES):
            await asyncio.sleep(seconds / (CONTROL_CYCLES + 1))
            successor = Server(ports, handoff=False, reuse_port=True)
            await asyncio.to_thread(successor.wait_started)
            await asyncio.to_thread(servers[-1].stop)
            servers.append(successor)
        return CONTROL_CYCLES, 0

    counts, _ = asyncio.run(load(ports, 8, overlap, tools=("churn",)))
    total = line("control_reuseport_overlap", counts, f"restarts={CONTROL_CYCLES} tcp_migrate_req={migrate}")
    results.append(("control_reuseport_overlap", total["refused"] + total["reset"] + total["bad"] > 0))
    servers[-1].stop()
    for s in servers:
        if s.process.poll() is None:
            s.process.kill()

    passed = sum(1 for _, ok in results if ok)
    for case, ok in results:
        if not ok:
            log(f"{case}: did not meet its goal (the servers' logs are in {WORK})")
    if passed == len(results):
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"restarts: {passed} passed, {len(results) - passed} failed", flush=True)
    return 0 if passed == len(results) else 1


sys.exit(main())
