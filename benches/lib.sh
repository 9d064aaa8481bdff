# Shared by the benchmarks: benches/run.sh and benches/exec.sh use all of it,
# benches/search.sh and benches/daemon.sh its settings, log and die. Source it
# after `set -euo pipefail` (and after setting RUNS and BENCH_TAG, the prefix of
# log lines). Not a script of its own.
#
# Sets ROOT, SEED (BENCH_SEED, default 42), TARGET_DIR (CARGO_TARGET_DIR,
# default ./target), BENCH_DIR, GEN, REPORT and TIME; defines log, die,
# parse_sizes, ensure_tools, timed, time_report, fail_run, build, csv_for, write_config,
# check_json, liaison_sync, median and max.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SEED=${BENCH_SEED:-42}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH_DIR=$TARGET_DIR/bench
GEN=$ROOT/benches/gen_csv.py
REPORT=$ROOT/BENCHMARKS.md
TIME=/usr/bin/time
BENCH_TAG=${BENCH_TAG:-bench}

log() { printf '[%s] %s\n' "$BENCH_TAG" "$*" >&2; }
die() { printf '[%s] FAIL: %s\n' "$BENCH_TAG" "$*" >&2; exit 1; }

# parse_sizes [SIZES...]: sets SIZES (default 100000 1000000) and checks them,
# BENCH_SEED and RUNS.
parse_sizes() {
  if [[ $# -gt 0 ]]; then SIZES=("$@"); else SIZES=(100000 1000000); fi
  local n
  for n in "${SIZES[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "size '$n' is not a positive integer (usage: $0 [SIZES...])"
  done
  [[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED '$SEED' is not a non-negative integer"
  [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS '$RUNS' is not a positive integer"
}

# --- tools ------------------------------------------------------------------------
# ensure_tools [COMMAND...]: GNU time and each COMMAND (named as its Debian
# package), installed with apt-get when run as root; python3 and cargo.
ensure_tools() {
  local missing=() tool
  [[ -x $TIME ]] || missing+=(time)
  for tool in "$@"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]} (install them, or run as root)"
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  command -v python3 >/dev/null || die "python3 is needed for the CSV generator"
  command -v cargo >/dev/null || die "cargo is needed to build liaison"
}

# --- timing -----------------------------------------------------------------------
# timed PREFIX CMD...: runs CMD under `time -v`; stdout → PREFIX.out (or
# TIMED_STDOUT when set, e.g. /dev/null), stderr → PREFIX.err, time report →
# PREFIX.time. Sets RC, WALL and CPU (user + system, the waited-for children
# included) in seconds, and RSS_MB (the largest single process).
timed() {
  local prefix=$1; shift
  RC=0
  "$TIME" -v -o "$prefix.time" "$@" >"${TIMED_STDOUT:-$prefix.out}" 2>"$prefix.err" || RC=$?
  time_report "$prefix"
}

# time_report PREFIX: reads PREFIX.time (written by `time -v`) into WALL, CPU
# and RSS_MB.
time_report() {
  local prefix=$1
  WALL=$(awk -F': ' '/Elapsed \(wall clock\) time/ {
           n = split($2, p, ":"); s = 0
           for (i = 1; i <= n; i++) s = s * 60 + p[i]
           printf "%.2f", s }' "$prefix.time")
  CPU=$(awk -F': ' '/(User|System) time \(seconds\)/ { s += $2 } END { printf "%.2f", s }' "$prefix.time")
  RSS_MB=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$prefix.time")
  [[ -n $WALL && -n $CPU && -n $RSS_MB ]] || die "could not parse $prefix.time"
}

# Prints the last lines of a failed command's stderr and stops.
fail_run() {
  local what=$1 prefix=$2
  {
    printf '[%s] FAIL: %s: exit code %s after %s s (CPU %s s, peak RSS %s MB)\n' \
      "$BENCH_TAG" "$what" "$RC" "$WALL" "$CPU" "$RSS_MB"
    printf '[%s] --- stderr tail (%s.err) ---\n' "$BENCH_TAG" "$prefix"
    tail -n 20 "$prefix.err"
    printf '[%s] --- stdout tail (%s.out) ---\n' "$BENCH_TAG" "$prefix"
    tail -n 20 "$prefix.out" 2>/dev/null || true
  } >&2
  exit 1
}

# --- steps ------------------------------------------------------------------------
# build [NAME]: builds the release binary and sets LIAISON to a private copy,
# BENCH_DIR/NAME (default liaison).
build() {
  log "building: cargo build --release --bin liaison"
  (cd "$ROOT" && cargo build --release --bin liaison) || die "cargo build failed"
  # Benchmark a private copy: other people's builds may replace target/release/liaison
  # while this runs.
  mkdir -p "$BENCH_DIR"
  LIAISON=$BENCH_DIR/${1:-liaison}
  cp "$TARGET_DIR/release/liaison" "$LIAISON"
}

# csv_for N: prints the path of the (cached) CSV with N rows; CSV.expected
# holds the number of users a fresh store must end up with.
csv_for() {
  local n=$1 gen_sum csv
  gen_sum=$(sha256sum "$GEN" | cut -c1-10)
  csv=$BENCH_DIR/data/standard-$n-seed$SEED-$gen_sum.csv
  if [[ ! -s $csv ]]; then
    mkdir -p "$BENCH_DIR/data"
    log "generating $csv"
    local t0=$SECONDS
    python3 "$GEN" "$n" "$csv" --seed "$SEED" || die "gen_csv.py failed"
    log "generated $n rows in $((SECONDS - t0)) s"
  else
    log "reusing $csv"
  fi
  # The users a fresh store must end up with: one per distinct e-mail
  # (case-insensitive) among rows not opted out by portal_access=false.
  if [[ ! -s $csv.expected ]]; then
    python3 - "$csv" >"$csv.expected.tmp" <<'EOF'
import csv, sys
with open(sys.argv[1], encoding="utf-8", newline="") as f:
    print(len({r["email"].lower() for r in csv.DictReader(f) if r["portal_access"] != "false"}))
EOF
    mv "$csv.expected.tmp" "$csv.expected"
  fi
  printf '%s\n' "$csv"
}

# write_config DIR SOURCE: DIR/liaison.yaml, the quickstart's embedded defaults
# with one source named bench; SOURCE is its keys after the name, indented by
# four spaces (`    type: csv` and so on).
write_config() {
  local dir=$1 source=$2
  cat >"$dir/liaison.yaml" <<EOF
# Generated by benches/$(basename "$0") — the quickstart's embedded defaults on a big source.
store: sqlite://state/liaison.db
portal:
  url: https://support.example.com/clients/login
default_locale: en
sources:
  - name: bench
$source
safety:
  max_deprovision: 50
  max_deprovision_ratio: 0.10
  max_bad_row_ratio: 0.05
deprovision:
  delete_after: 30d
mail:
  transport: file://state/mail
  from: "Support <support@example.com>"
  schedule: "*/5 * * * *"
EOF
}

# check_json FILE MODE: validates a `sync --once --format json` output and prints
# "created<TAB>row_errors<TAB>read mode". MODE full: applied and created > 0;
# MODE noop: applied and nothing created, updated, disabled, enabled or deleted.
check_json() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
path, mode = sys.argv[1], sys.argv[2]
try:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"{path}: not a JSON document: {e}")
runs = data if isinstance(data, list) else [data]
problems = []
for r in runs:
    if r.get("status") != "applied":
        problems.append(f"source {r.get('source')!r}: status {r.get('status')!r}, expected 'applied'")
created = sum(r.get("created", 0) for r in runs)
errors = sum(len(r.get("errors", [])) for r in runs)
if mode == "full" and created <= 0:
    problems.append(f"full sync created {created} users, expected > 0")
if mode == "noop":
    changed = {k: sum(r.get(k, 0) for r in runs)
               for k in ("created", "updated", "disabled", "enabled", "deleted")}
    if any(changed.values()):
        problems.append(f"no-op sync changed something: {changed}")
if problems:
    sys.exit(f"{path}: " + "; ".join(problems))
read = ",".join(sorted({(r.get("read") or {}).get("mode") or "-" for r in runs}))
print(f"{created}\t{errors}\t{read}")
EOF
}

# liaison_sync N WHAT DIR MODE: one timed `sync --once` with DIR/liaison.yaml,
# its files DIR/WHAT.*. Sets SYNC_S, SYNC_CPU, SYNC_RSS, SYNC_CREATED,
# SYNC_ERRORS and SYNC_READ (the read mode the JSON reports).
liaison_sync() {
  local n=$1 what=$2 dir=$3 mode=$4 prefix checked
  prefix=$dir/$what
  timed "$prefix" "$LIAISON" --config "$dir/liaison.yaml" sync --once --format json
  [[ $RC -eq 0 ]] || fail_run "liaison sync --once, $what ($n rows)" "$prefix"
  checked=$(check_json "$prefix.out" "$mode") || {
    tail -n 20 "$prefix.err" >&2
    die "liaison sync --once, $what ($n rows): unexpected result (above: stderr tail)"
  }
  IFS=$'\t' read -r SYNC_CREATED SYNC_ERRORS SYNC_READ <<<"$checked"
  SYNC_S=$WALL SYNC_CPU=$CPU SYNC_RSS=$RSS_MB
}

# median X...: the middle value (the lower middle for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# max A B: the larger number.
max() {
  awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'
}
