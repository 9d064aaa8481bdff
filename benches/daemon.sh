#!/usr/bin/env bash
# The daemon's own costs, through the release binary and a real NOTIFY_SOCKET:
#
#   benches/daemon.sh [ROWS]          default: 100000
#
# One `liaison run` on a fresh store with one watched CSV source of ROWS rows
# (benches/gen_csv.py) and the HTTP listener; a Python harness binds the
# notification socket and measures:
#   1. start → READY=1, and start → the start-up run applied (the first import);
#   2. idle: CPU time the process used over 10 s with nothing to do, its RSS;
#   3. a one-row change dropped by atomic rename → the run that applied it
#      (the watch's quiet period, 1 s here, is part of it);
#   4. GET /metrics: median of 20 scrapes;
#   5. SIGTERM while a run that changes every row is in progress → exit (and
#      its exit code), then that nothing was half-applied.
# Rewrites only the daemon section of BENCHMARKS.md (between the
# `daemon:begin` and `daemon:end` markers, by benches/write_section.py;
# benches/run.sh keeps it).
#
# Environment: BENCH_SEED (42), CARGO_TARGET_DIR (./target).
set -euo pipefail

BENCH_TAG=daemon
# ROOT, SEED, TARGET_DIR, BENCH_DIR, GEN, REPORT, TIME, log and die.
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=${1:-100000}

[[ $N =~ ^[1-9][0-9]*$ ]] || die "size '$N' is not a positive integer"
command -v python3 >/dev/null || die "python3 is needed"

log "building the release binary"
(cd "$ROOT" && cargo build --release --quiet --bin liaison)
LIAISON=$TARGET_DIR/release/liaison

mkdir -p "$BENCH_DIR/data"
DATA=$BENCH_DIR/data/daemon-$N-$SEED.csv
if [[ ! -s $DATA ]]; then
  log "generating $N rows"
  python3 "$GEN" "$N" "$DATA" --seed "$SEED" || die "gen_csv.py failed"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/liaison-daemon-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

SECTION=$WORK/section.md
python3 - "$LIAISON" "$DATA" "$WORK" "$N" "$SECTION" <<'PY' || die "the measurement failed"
import json, os, shutil, signal, socket, statistics, subprocess, sys, time, urllib.request

liaison, data, work, n, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
hz = os.sysconf("SC_CLK_TCK")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

port = free_port()
csv_path = os.path.join(work, "partners.csv")
shutil.copyfile(data, csv_path)
config = os.path.join(work, "liaison.yaml")
with open(config, "w") as f:
    f.write(f"""store: sqlite://liaison.db
sources:
  - name: partners
    type: csv
    path: partners.csv
    watch: {{ quiet: 1s, rescan: 60s }}
safety:
  max_deprovision_ratio: 1.0
  max_deprovision: 100000000
api:
  listen: 127.0.0.1:{port}
""")

sock_path = os.path.join(work, "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sock_path)
sock.settimeout(600)
env = dict(os.environ, NOTIFY_SOCKET=sock_path)
env.pop("RUST_LOG", None)
log = open(os.path.join(work, "daemon.log"), "w")
start = time.monotonic()
proc = subprocess.Popen([liaison, "--config", config, "run"], env=env, stderr=log, stdout=log)

def until(predicate):
    while True:
        msg = sock.recv(65536).decode()
        if predicate(msg):
            return time.monotonic(), msg

def cpu_s():
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / hz

def rss_mb(key):
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")

t_ready, _ = until(lambda m: "READY=1" in m)
t_first, first = until(lambda m: "STATUS=partners: applied" in m or "STATUS=partners: failed" in m)
if "applied" not in first:
    sys.exit(f"the start-up run did not apply: {first}")

time.sleep(1)
cpu0 = cpu_s(); time.sleep(10); idle_cpu_ms = (cpu_s() - cpu0) * 1000
idle_rss = rss_mb("VmRSS:"); peak_rss = rss_mb("VmHWM:")

# One more row, renamed into place.
with open(data) as f:
    header = f.readline()
extra = header.rstrip("\n").split(",")
row = ["c-bench-extra", "Bench Extra", "bench.extra@example.test"] + [""] * (len(extra) - 3)
cols = {name: i for i, name in enumerate(extra)}
if "portal_access" in cols:
    row[cols["portal_access"]] = "yes"
tmp = csv_path + ".tmp"
shutil.copyfile(csv_path, tmp)
with open(tmp, "a") as f:
    f.write(",".join(row) + "\n")
t_drop = time.monotonic()
os.rename(tmp, csv_path)
t_change, _ = until(lambda m: "1 created" in m)

scrapes = []
for _ in range(20):
    t = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
        body = r.read()
    scrapes.append((time.monotonic() - t) * 1000)

# Every row's e-mail changes: a run that updates every user.
with open(csv_path) as f, open(tmp, "w") as g:
    g.write(f.readline())
    for line in f:
        g.write(line.replace("@", "+x@", 1))
os.rename(tmp, csv_path)
until(lambda m: "STATUS=partners: running" in m)
time.sleep(0.5)
t_term = time.monotonic()
proc.send_signal(signal.SIGTERM)
code = proc.wait(timeout=120)
t_exit = time.monotonic()

listed = subprocess.run([liaison, "--config", config, "users", "list", "--search", "+x@", "--format", "json"],
                        capture_output=True, text=True, check=True)
changed = len(json.loads(listed.stdout))
everyone = subprocess.run([liaison, "--config", config, "users", "list", "--format", "json"],
                          capture_output=True, text=True, check=True)
total = len(json.loads(everyone.stdout))

with open(out, "w") as f:
    f.write(f"""## The daemon

Generated by `benches/daemon.sh {n}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
(release build, one watched CSV source of {n:,} rows, a fresh store, the HTTP
listener on; times from the harness's NOTIFY_SOCKET datagrams, CPU and RSS from
`/proc`). One run each: treat ±20 % as noise on this shared machine.

| measure | value |
|---|---:|
| start → `READY=1` | {(t_ready - start) * 1000:.0f} ms |
| start → start-up run applied ({n:,} rows, {total:,} users) | {t_first - start:.2f} s |
| idle CPU over 10 s | {idle_cpu_ms:.0f} ms |
| RSS idle / peak (after the first import) | {idle_rss:.0f} / {peak_rss:.0f} MB |
| one-row file renamed into place → applied (quiet period 1 s included) | {(t_change - t_drop) * 1000:.0f} ms |
| `GET /metrics`, median of 20 | {statistics.median(scrapes):.1f} ms |
| SIGTERM during a run updating every user → exit | {(t_exit - t_term) * 1000:.0f} ms (exit code {code}) |
| users changed by that interrupted run | {changed} of {total:,} (0 or all: nothing half-applied) |
""")
if code != 0:
    sys.exit(f"the daemon exited {code} after SIGTERM")
if changed not in (0, total):
    sys.exit(f"{changed} users changed by an interrupted run: half-applied")
PY

log "result:"
cat "$SECTION" >&2
python3 "$ROOT/benches/write_section.py" "$REPORT" daemon <"$SECTION"
log "BENCHMARKS.md: daemon section rewritten"
