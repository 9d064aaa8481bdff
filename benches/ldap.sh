#!/usr/bin/env bash
# The LDAP connector (issue 12) against a real OpenLDAP slapd, next to
# `ldapsearch` dumping the same entries in the same run.
#
#   benches/ldap.sh [N]          default 100000 (people; 20 groups list them)
#
# 1. builds `cargo build --release --bin liaison` (a private copy is timed);
# 2. makes the LDIF with benches/gen_ldif.py (cached in target/bench/data/,
#    keyed by N and the generator's checksum): N inetOrgPerson entries under
#    ou=people and 20 groupOfNames under ou=groups listing them all;
# 3. starts a throwaway slapd in a temp dir on 127.0.0.1 (mdb with dbnosync;
#    core, cosine, inetorgperson, nis schemas; syncprov with a session log of
#    N + 10,000 operations and the reload hint; memberof), `slapadd`s the LDIF
#    before it starts, and stops it on exit (trap);
# 4. times, each under `/usr/bin/time -v` (wall, CPU of the process and the
#    children it waited for, peak RSS):
#    (a) the reference: `ldapsearch -E pr=1000/noprompt -LLL` of the same
#        entries (people and groups) and attributes as the source reads, to
#        /dev/null;
#    (b) `liaison sync --once` into an empty store (goal ≤ 2.0× (a));
#    (c) `liaison sync --once --full` with nothing changed (goal ≤ 1.2× (a));
#    (d) 1,000 modifications (telephoneNumber of every N/1,000th person, by
#        ldapmodify), then `liaison sync --once`: an RFC 4533 changes read
#        (goal ≤ 2 s; it must report read.mode = changes, read 1,000 records —
#        the "source read rows=" of RUST_LOG=liaison=debug — and update 1,000);
#    (e) one person deleted and every other one modified (its description,
#        which the source does not read), then `liaison sync --once`: a
#        changes read of N − 1 changed entries — a delete phase, so they
#        stream to the host — which the host finds unchanged, so that its
#        peak RSS is the read's and compares with (c)'s (goal ≤ 1.2× (c));
#    and, for (d) and (e), the server's own answer for comparison:
#    `ldapsearch -E sync=ro/COOKIE` of the changed people with a cookie taken
#    just before the modifications;
#    (a)–(d) BENCH_RUNS times (medians, the largest RSS), (e) once;
# 5. checks every result (applied; the created / updated / disabled counts;
#    the read mode) and fails loudly otherwise;
# 6. unless BENCH_PHASES=0, runs (b)–(d) once more with RUST_LOG=liaison=debug
#    for the phase timings (the `close time.busy` of each phase's span) and the
#    peak RSS logged after each phase; (e) always runs that way;
# 7. rewrites only the ldap section of BENCHMARKS.md (between `ldap:begin` and
#    `ldap:end`, by benches/write_section.py; benches/run.sh keeps it).
#
# Environment: BENCH_RUNS (3), BENCH_PHASES (1), CARGO_TARGET_DIR (./target),
# BENCH_LIAISON (a liaison binary to time instead of building one, e.g. an
# older build to compare with; the section then says so).
# Needs python3, GNU time, slapd and ldap-utils (as root, installs them when
# missing).
set -euo pipefail

RUNS=${BENCH_RUNS:-3}
PHASES=${BENCH_PHASES:-1}
BENCH_TAG=ldap
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
unset RUST_LOG # the timed runs log as they would by default
GEN_LDIF=$ROOT/benches/gen_ldif.py
SLAPD=/usr/sbin/slapd

# Goals (issue 12, "Benchmark").
INITIAL_MAX_RATIO=2.0
FULL_MAX_RATIO=1.2
CHANGES_MAX_S=2
# (e) may use this much more memory than (c) ("not far above the full read's").
BIG_MAX_RATIO=1.2

MODS=1000
PAGE=1000
NGROUPS=20
SUFFIX=dc=example,dc=com
PEOPLE=ou=people,$SUFFIX
GROUPS_DN=ou=groups,$SUFFIX
ADMIN=cn=admin,$SUFFIX
ATTRS=(cn mail o telephoneNumber)
FILTER='(objectClass=inetOrgPerson)'
GROUP_FILTER='(objectClass=groupOfNames)'

[[ $# -le 1 ]] || die "usage: $0 [N]"
N=${1:-100000}
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N '$N' is not a positive integer (usage: $0 [N])"
((N >= MODS)) || die "N must be at least $MODS: the changes read of (d) modifies $MODS entries"
((N < 100000000)) || die "N must be below 100,000,000 (the telephone numbers have 8 digits for it)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS '$RUNS' is not a positive integer"
[[ $PHASES == 0 || $PHASES == 1 ]] || die "BENCH_PHASES must be 0 or 1, not '$PHASES'"

load() { cut -d' ' -f1-3 /proc/loadavg; }

# version COMMAND NAME: "OpenLDAP NAME 2.5.13+dfsg-5", from COMMAND -VV.
version() { "$1" -VV 2>&1 | sed -n "1s/.*OpenLDAP: \($2 [^ ]*\).*/OpenLDAP \1/p"; }

# --- tools ------------------------------------------------------------------------
ensure_ldap_tools() {
  local missing=()
  [[ -x $SLAPD ]] && command -v slapadd >/dev/null || missing+=(slapd)
  command -v ldapsearch >/dev/null && command -v ldapmodify >/dev/null || missing+=(ldap-utils)
  if [[ ${#missing[@]} -gt 0 ]]; then
    [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]} (install them, or run as root)"
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq
    # slapd's postinst makes a default instance and does not start it in a
    # container; this script never uses it.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  ensure_tools
}

# ldif_for N: the path of the (cached) LDIF with N people.
ldif_for() {
  local n=$1 sum ldif
  sum=$(sha256sum "$GEN_LDIF" | cut -c1-10)
  ldif=$BENCH_DIR/data/ldap-$n-groups$NGROUPS-gen$sum.ldif
  if [[ ! -s $ldif ]]; then
    mkdir -p "$BENCH_DIR/data"
    log "generating $ldif"
    python3 "$GEN_LDIF" "$n" "$ldif.tmp" --groups "$NGROUPS" || die "gen_ldif.py failed"
    mv "$ldif.tmp" "$ldif"
  else
    log "reusing $ldif"
  fi
  printf '%s\n' "$ldif"
}

# --- the server ---------------------------------------------------------------------
SLAPD_PID="" SD=""
cleanup() {
  if [[ -n $SLAPD_PID ]]; then
    kill "$SLAPD_PID" 2>/dev/null || true
    wait "$SLAPD_PID" 2>/dev/null || true
    SLAPD_PID=""
  fi
  if [[ -n $SD && -d $SD ]]; then
    [[ -n ${DIR:-} && -d $DIR ]] && cp "$SD/slapd.log" "$DIR/slapd.log" 2>/dev/null || true
    rm -rf "$SD"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_slapd_conf() {
  local maxsize=$((N * 16384 > 1073741824 ? N * 16384 : 1073741824)) schema
  {
    for schema in core cosine inetorgperson nis; do
      echo "include /etc/ldap/schema/$schema.schema"
    done
    cat <<EOF
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
moduleload memberof
pidfile $SD/slapd.pid
argsfile $SD/slapd.args
sizelimit unlimited
database mdb
maxsize $maxsize
# A throwaway server: no fsync per write (the $N ldapmodify writes of (e)).
dbnosync
suffix "$SUFFIX"
rootdn "$ADMIN"
rootpw $PASSWORD
directory $SD/db
index objectClass,entryUUID,entryCSN eq
index uid,mail eq
overlay syncprov
syncprov-checkpoint 100 10
# Covers the changes of (e) too, so that its read is a delete phase.
syncprov-sessionlog $SESSIONLOG
syncprov-reloadhint TRUE
overlay memberof
EOF
  } >"$SD/slapd.conf"
}

# Starts slapd in the foreground as a child (so its pid is ours), on a free
# port; a port taken before slapd bound it makes it try another.
start_slapd() {
  local try i user_args=()
  [[ $(id -u) -eq 0 ]] && user_args=(-u "$(id -un)")
  for try in 1 2 3; do
    PORT=$(free_port)
    URL=ldap://127.0.0.1:$PORT
    "$SLAPD" -f "$SD/slapd.conf" -h "$URL/" "${user_args[@]}" -d 0 >>"$SD/slapd.log" 2>&1 &
    SLAPD_PID=$!
    for ((i = 0; i < 200; i++)); do
      kill -0 "$SLAPD_PID" 2>/dev/null || break
      # Our rootdn and password: an answer from another server does not count.
      if ldapwhoami -x -H "$URL" -D "$ADMIN" -y "$PWFILE" >/dev/null 2>&1; then
        log "slapd (pid $SLAPD_PID) answers on $URL"
        return 0
      fi
      sleep 0.1
    done
    kill "$SLAPD_PID" 2>/dev/null || true
    wait "$SLAPD_PID" 2>/dev/null || true
    SLAPD_PID=""
    grep -q "Address already in use" "$SD/slapd.log" || break
    log "port $PORT was taken; trying another"
  done
  tail -n 20 "$SD/slapd.log" >&2
  die "slapd did not start (above: the end of its log)"
}

ldap_args() { printf '%s\n' -x -H "$URL" -D "$ADMIN" -y "$PWFILE"; }

# ldap_modify NAME LDIF: applies the change records of LDIF (timed, for the log).
ldap_modify() {
  local name=$1 ldif=$2 args
  mapfile -t args < <(ldap_args)
  timed "$DIR/$name" ldapmodify "${args[@]}" -f "$ldif"
  [[ $RC -eq 0 ]] || fail_run "ldapmodify $ldif" "$DIR/$name"
  log "ldapmodify $(basename "$ldif"): $WALL s"
}

# mods_file NAME FIRST STEP COUNT ATTR VALUE [DELETE_UID]: LDIF replacing ATTR
# of COUNT people, from number FIRST every STEP, with VALUE (a Python format
# string of the person's number i), after deleting person DELETE_UID (then
# not modified).
mods_file() {
  python3 - "$DIR/$1.ldif" "$2" "$3" "$4" "$5" "$6" "${7:-0}" "$PEOPLE" <<'EOF'
import sys
out, first, step, count, attr, value, delete, people = sys.argv[1:9]
first, step, count, delete = int(first), int(step), int(count), int(delete)
with open(out, "w", encoding="utf-8") as f:
    if delete:
        f.write(f"dn: uid=user{delete:06d},{people}\nchangetype: delete\n\n")
    for k in range(count):
        i = first + k * step
        if i == delete:
            continue
        f.write(f"dn: uid=user{i:06d},{people}\nchangetype: modify\nreplace: {attr}\n"
                f"{attr}: {value.format(i=i)}\n\n")
EOF
  printf '%s\n' "$DIR/$1.ldif"
}

# phone DIGIT: the telephone numbers of a run of (d), "+420 DIGIT<i in 8
# digits>" (each run another DIGIT than the last, 1–7, so every value changes;
# the LDIF's start with 6).
phone() { printf '+420 %s{i:08d}' "$1"; }

# take_cookie: COOKIE, the server's sync cookie of now (a refreshOnly search
# matching nothing, as the connector takes one before a full read).
take_cookie() {
  local args
  mapfile -t args < <(ldap_args)
  COOKIE=$(ldapsearch "${args[@]}" -b "$PEOPLE" -s base -E sync=ro -L \
    '(entryUUID=00000000-0000-0000-0000-000000000000)' 1.1 | python3 -c '
import base64, re, sys
text = sys.stdin.read()
m = re.search(r"# control: 1\.3\.6\.1\.4\.1\.4203\.1\.9\.1\.3 \w+ (\S+)((?:\n \S+)*)", text)
if not m:
    sys.exit("no Sync Done control in the answer")
ber = base64.b64decode(m.group(1) + m.group(2).replace("\n ", ""))
# syncDoneValue ::= SEQUENCE { cookie OCTET STRING OPTIONAL, refreshDeletes BOOLEAN DEFAULT FALSE }
assert ber[0] == 0x30 and ber[2] == 0x04 and ber[3] < 0x80, ber
print(ber[4:4 + ber[3]].decode())
') || die "could not take a sync cookie"
}

# sync_reference NAME: the server's answer to a refreshOnly search with
# COOKIE, the changed people with the source's attributes, to /dev/null.
sync_reference() {
  local args
  mapfile -t args < <(ldap_args)
  TIMED_STDOUT=/dev/null timed "$DIR/$1" ldapsearch "${args[@]}" -b "$PEOPLE" \
    -E "sync=ro/$COOKIE" -LLL "$FILTER" "${ATTRS[@]}" entryUUID modifyTimestamp
  [[ $RC -eq 0 ]] || fail_run "ldapsearch -E sync=ro/COOKIE" "$DIR/$1"
}

# --- liaison --------------------------------------------------------------------------
write_source_config() {
  local attrs
  attrs=$(IFS=,; printf '%s' "${ATTRS[*]}")
  write_config "$DIR" "    type: ldap
    url: $URL
    bind_dn: $ADMIN
    bind_password: \${file:$PWFILE}
    base_dn: $PEOPLE
    filter: \"$FILTER\"
    attributes: [${attrs//,/, }]
    page_size: $PAGE
    groups:
      base_dn: $GROUPS_DN
      filter: \"$GROUP_FILTER\"
    map:
      name: \"{{ cn }}\"
      email: \"{{ mail | first | lower }}\"
      phone: \"{{ telephoneNumber | first }}\"
      account_id: \"{{ o | first | slug }}\"
      account_name: \"{{ o | first }}\"
      grants: \"{{ groups }}\""
}

# check_result FILE KEY=VALUE...: checks a `sync --once --format json` output
# (applied, no errors, each KEY — created, updated, disabled, unchanged, mode
# (read.mode) — as given) and prints "created updated disabled mode".
check_result() {
  python3 - "$@" <<'EOF'
import json, sys
path, expected = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
try:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"{path}: not a JSON document: {e}")
r = data[0] if isinstance(data, list) else data
got = {k: str(r.get(k)) for k in ("created", "updated", "disabled", "unchanged")}
got["mode"] = str((r.get("read") or {}).get("mode"))
problems = [f"status {r.get('status')!r}, expected 'applied'"] if r.get("status") != "applied" else []
if r.get("errors"):
    problems.append(f"{len(r['errors'])} row errors, the first: {r['errors'][0]}")
problems += [f"{k} {got[k]}, expected {v}" for k, v in expected.items() if got.get(k) != v]
if problems:
    sys.exit(f"{path}: " + "; ".join(problems))
print(got["created"], got["updated"], got["disabled"], got["mode"])
EOF
}

# liaison_run NAME WHAT [ARGS...] -- KEY=VALUE...: one timed `sync --once
# --format json ARGS` (with RUST_LOG when LOGGED is set), checked; sets WALL,
# CPU, RSS_MB and MODE.
liaison_run() {
  local name=$1 what=$2 args=() checked created updated disabled
  shift 2
  while [[ $# -gt 0 && $1 != -- ]]; do args+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  if [[ -n ${LOGGED:-} ]]; then
    RUST_LOG=liaison=debug timed "$DIR/$name" "$LIAISON" --config "$DIR/liaison.yaml" \
      sync --once --format json "${args[@]}"
  else
    timed "$DIR/$name" "$LIAISON" --config "$DIR/liaison.yaml" sync --once --format json "${args[@]}"
  fi
  [[ $RC -eq 0 ]] || fail_run "liaison sync --once ${args[*]}: $what" "$DIR/$name"
  checked=$(check_result "$DIR/$name.out" "$@") || {
    tail -n 20 "$DIR/$name.err" >&2
    die "liaison sync --once ${args[*]}: $what: unexpected result (above: stderr tail)"
  }
  read -r created updated disabled MODE <<<"$checked"
  log "$what: $WALL s (CPU $CPU s), $RSS_MB MB; created $created, updated $updated, disabled $disabled, read $MODE"
}

# phases FILE: from a debug-logged run's stderr, "read load_state plan commit
# other run rows peak" (seconds; other = the remaining phases inside the run's
# span; rows = the records the read delivered, from "source read rows=";
# peak = MB after state / plan / apply).
phases() {
  python3 - "$1" <<'EOF'
import re, sys
unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
def secs(v):
    m = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s)", v)
    return float(m.group(1)) * unit[m.group(2)]
spans, peaks, rows = {}, {}, None
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.search(r" run\{[^}]*\}(?::(\w+)(?:\{[^}]*\})?)?: \S+: close time\.busy=(\S+)", line)
    if m:
        name = m.group(1) or "run"
        spans[name] = spans.get(name, 0.0) + secs(m.group(2))
        continue
    m = re.search(r": source read rows=(\d+)", line)
    if m:
        rows = m.group(1)
    m = re.search(r": (state loaded|planned|applied) .*peak_mb=(\d+)", line)
    if m:
        peaks[m.group(1)] = m.group(2)
if "run" not in spans or "read" not in spans or rows is None:
    sys.exit(f"{sys.argv[1]}: no phase timings or rows (is RUST_LOG=liaison=debug honoured?)")
main = {k: spans.get(k, 0.0) for k in ("read", "load_state", "plan", "commit")}
other = max(spans["run"] - sum(main.values()), 0.0)
peak = "/".join(peaks.get(k, "?") for k in ("state loaded", "planned", "applied"))
print(" ".join(f"{v:.2f}" for v in (*main.values(), other, spans["run"])) + f" {rows} {peak}")
EOF
}

# record KEY VALUE...: one line of the results file.
record() { printf '%s\t%s\n' "$1" "${*:2}" >>"$RESULTS"; }

# debug_phases STEP: the phase timings of the debug-logged run STEP-debug.
debug_phases() {
  local timings
  timings=$(phases "$DIR/$1.err") || die "no phase timings in $DIR/$1.err"
  record "phases-$2" "$WALL $timings"
}

# --- the steps -------------------------------------------------------------------------
main() {
  ensure_ldap_tools
  if [[ -n ${BENCH_LIAISON:-} ]]; then
    [[ -x $BENCH_LIAISON ]] || die "BENCH_LIAISON '$BENCH_LIAISON' is not an executable"
    mkdir -p "$BENCH_DIR"
    LIAISON=$BENCH_DIR/liaison-ldap
    cp "$BENCH_LIAISON" "$LIAISON"
    log "timing $BENCH_LIAISON (BENCH_LIAISON), not a fresh build"
  else
    build liaison-ldap
  fi
  local load_start ldif
  load_start=$(load)
  ldif=$(ldif_for "$N")
  DIR=$BENCH_DIR/ldap-$N
  RESULTS=$BENCH_DIR/ldap-results.tsv
  rm -rf "$DIR"
  mkdir -p "$DIR"
  : >"$RESULTS"
  SD=$(mktemp -d "${TMPDIR:-/tmp}/liaison-bench-slapd.XXXXXX")
  PWFILE=$DIR/admin.password
  PASSWORD=bench-$RANDOM$RANDOM$RANDOM
  printf '%s' "$PASSWORD" >"$PWFILE"
  chmod 600 "$PWFILE"
  SESSIONLOG=$((N + 10000))
  write_slapd_conf
  mkdir -p "$SD/db"
  timed "$DIR/slapadd" slapadd -q -f "$SD/slapd.conf" -l "$ldif"
  [[ $RC -eq 0 ]] || fail_run "slapadd" "$DIR/slapadd"
  record slapadd "$WALL"
  log "slapadd of $N people and $NGROUPS groups: $WALL s"
  start_slapd
  write_source_config
  local args count r
  mapfile -t args < <(ldap_args)
  count=$(ldapsearch "${args[@]}" -b "$SUFFIX" -LLL "(|$FILTER$GROUP_FILTER)" 1.1 | grep -c '^dn:')
  [[ $count -eq $((N + NGROUPS)) ]] || die "the server holds $count people and groups, expected $((N + NGROUPS))"

  declare -A wall=() cpu=() rss=()
  add() { wall[$1]+="$WALL " cpu[$1]+="$CPU " rss[$1]=$(max "${rss[$1]:-0}" "$RSS_MB"); }
  for ((r = 1; r <= RUNS; r++)); do
    log "run $r/$RUNS: (a) ldapsearch -E pr=$PAGE/noprompt (reference)"
    TIMED_STDOUT=/dev/null timed "$DIR/dump" ldapsearch "${args[@]}" -b "$SUFFIX" \
      -E "pr=$PAGE/noprompt" -LLL "(|$FILTER$GROUP_FILTER)" "${ATTRS[@]}" entryUUID modifyTimestamp member
    [[ $RC -eq 0 ]] || fail_run "ldapsearch (reference)" "$DIR/dump"
    log "(a) reference: $WALL s (CPU $CPU s), $RSS_MB MB"
    add dump
    rm -rf "$DIR/state"
    liaison_run initial "run $r/$RUNS: (b) initial sync" -- "created=$N" mode=full
    add initial
  done
  for ((r = 1; r <= RUNS; r++)); do
    liaison_run full "run $r/$RUNS: (c) --full, nothing changed" --full -- \
      created=0 updated=0 disabled=0 "unchanged=$N" mode=full
    add full
  done
  local step=$((N / MODS)) mods
  for ((r = 1; r <= RUNS; r++)); do
    take_cookie
    mods=$(mods_file "mods-$r" 1 "$step" "$MODS" telephoneNumber "$(phone $((r % 7 + 1)))")
    ldap_modify "mods-$r" "$mods"
    sync_reference "changes-ref"
    log "(d) reference: ldapsearch -E sync=ro/COOKIE: $WALL s"
    add changes-ref
    liaison_run changes "run $r/$RUNS: (d) changes read after $MODS modifications" -- \
      created=0 "updated=$MODS" disabled=0 mode=changes
    add changes
  done

  if [[ $PHASES == 1 ]]; then
    log "(b)-(d) once more with RUST_LOG=liaison=debug (phase timings)"
    rm -rf "$DIR/state"
    LOGGED=1 liaison_run initial-debug "(b) initial sync, debug-logged" -- "created=$N" mode=full
    debug_phases initial-debug initial
    LOGGED=1 liaison_run full-debug "(c) --full, debug-logged" --full -- updated=0 "unchanged=$N" mode=full
    debug_phases full-debug full
    mods=$(mods_file "mods-debug" 1 "$step" "$MODS" telephoneNumber "$(phone $(((RUNS + 1) % 7 + 1)))")
    ldap_modify "mods-debug" "$mods"
    LOGGED=1 liaison_run changes-debug "(d) changes read, debug-logged" -- "updated=$MODS" mode=changes
    debug_phases changes-debug changes
  fi

  # (e): every person changed (one deleted, so that the server's delete phase
  # is known from its first message and the entries stream to the host), in
  # an attribute the source does not read: the host finds every record
  # unchanged and holds none, so the peak RSS is the read's.
  take_cookie
  mods=$(mods_file "mods-all" 1 1 "$N" description "changed by benches/ldap.sh {i}" "$N")
  ldap_modify "mods-all" "$mods"
  record mods-all "$WALL"
  sync_reference "big-ref"
  log "(e) reference: ldapsearch -E sync=ro/COOKIE: $WALL s"
  add big-ref
  LOGGED=1 liaison_run big "(e) changes read after $N changes" -- \
    created=0 updated=0 disabled=1
  add big
  record big-mode "$MODE"
  debug_phases big big

  local key
  for key in "${!wall[@]}"; do
    # shellcheck disable=SC2086 # space-separated numbers
    record "step-$key" "$(median ${wall[$key]}) $(median ${cpu[$key]}) ${rss[$key]}"
  done
  record load "$load_start|$(load)"
  cleanup

  local tables commit runs_env=""
  [[ $RUNS == 3 ]] || runs_env="BENCH_RUNS=$RUNS "
  tables=$(render "$RESULTS")
  printf '\n%s\n\n' "$tables"
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  local loads built
  if [[ -n ${BENCH_LIAISON:-} ]]; then
    built="$("$LIAISON" --version 2>/dev/null || echo liaison): \`BENCH_LIAISON=$BENCH_LIAISON\` (HEAD was \`$commit\`)"
  else
    built="$("$LIAISON" --version 2>/dev/null || echo liaison) (release) at commit \`$commit\` (working tree as built)"
  fi
  loads=$(awk -F'\t' '$1 == "load" { print $2 }' "$RESULTS")
  {
    cat <<EOF
## LDAP (issue 12)

Generated by \`${runs_env}benches/ldap.sh $N\` on $(date -u '+%Y-%m-%d %H:%M UTC'); do not edit by hand.
$built;
$(version "$SLAPD" slapd), $(version ldapsearch ldapsearch);
$(nproc) CPUs ($(lscpu 2>/dev/null | awk -F': *' '/^Model name/ {print $2; exit}')), shared with other
builds and tests: load average (1, 5, 15 min) ${loads%%|*} at the start, ${loads##*|} at the end, so
treat ±20 % as noise. slapd runs on the same machine and competes for the same cores.

A throwaway slapd (mdb with \`dbnosync\`; syncprov with \`syncprov-sessionlog $SESSIONLOG\` and the
reload hint; memberof), the LDIF of \`benches/gen_ldif.py $N OUT --groups $NGROUPS\` ($N inetOrgPerson
entries, $NGROUPS groupOfNames listing them all) loaded by \`slapadd\` before it starts. Both
\`ldapsearch\` and liaison bind as the rootdn. The source: \`base_dn: $PEOPLE\`,
\`filter: $FILTER\`, \`attributes: [${ATTRS[*]}]\`, \`page_size: $PAGE\`, \`groups:\` under
\`$GROUPS_DN\` (their \`member\` lists become \`grants\`), mapped to name, e-mail, phone and account;
the quickstart's embedded defaults otherwise (SQLite store, file mail).

- **(a) reference**: \`ldapsearch -x -E pr=$PAGE/noprompt -LLL -b $SUFFIX
  '(|$FILTER$GROUP_FILTER)' ${ATTRS[*]} entryUUID modifyTimestamp member > /dev/null\` —
  the entries and attributes liaison's two searches ask for, in one search.
- **(b)** \`liaison sync --once\` into an empty store (checked: $N users created);
  **(c)** \`sync --once --full\` with nothing changed (checked: $N unchanged);
  **(d)** $MODS modifications by \`ldapmodify\` (the telephoneNumber of every $((N / MODS))th
  person), then \`sync --once\` (checked: read.mode changes, $MODS updated); its reference is
  \`ldapsearch -E sync=ro/COOKIE\` of the changed people with a cookie taken just before the
  modifications (the server's own share of a changes read);
  **(e)** one person deleted and the \`description\` of the other $((N - 1)) replaced, then
  \`sync --once\`: a changes read of $((N - 1)) entries, an RFC 4533 delete phase (the server
  sends the deletion first, so the entries stream to the host as they come); the source does
  not read \`description\`, so the host finds every record unchanged (checked: 0 updated,
  1 disabled) and holds none: its peak RSS is the read's, comparable with (c)'s (goal ≤
  ${BIG_MAX_RATIO}× (c)); with the same kind of reference.
- Each step under \`/usr/bin/time -v\`: wall, CPU (user + sys of liaison or ldapsearch, not of
  slapd), peak RSS. (a)–(d) ran $RUNS times (\`BENCH_RUNS\`; medians, the largest RSS); (e)
  once, with \`RUST_LOG=liaison=debug\` (a dozen log lines).

$tables

\`\`\`sh
benches/ldap.sh                  # 100,000 people; rewrites this section
benches/ldap.sh 10000            # another size
BENCH_RUNS=5 benches/ldap.sh     # medians of five
BENCH_PHASES=0 benches/ldap.sh   # without the debug-logged runs of (b)–(d)
\`\`\`

Files: \`target/bench/ldap-N/\` (slapd.log, the config, store, outputs, \`time -v\` reports,
the LDIF change files, the debug logs \`*-debug.err\` and \`big.err\`); the LDIF is
cached in \`target/bench/data/\`.
EOF
  } >"$BENCH_DIR/ldap-section.md"
  python3 "$ROOT/benches/write_section.py" "$REPORT" ldap <"$BENCH_DIR/ldap-section.md"
  log "BENCHMARKS.md: ldap section rewritten"
}

# render RESULTS: the section's tables and verdicts.
render() {
  python3 - "$1" "$N" "$MODS" "$INITIAL_MAX_RATIO" "$FULL_MAX_RATIO" "$CHANGES_MAX_S" "$BIG_MAX_RATIO" <<'EOF'
import sys
path, n, mods = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
initial_max, full_max, changes_max, big_max = map(float, sys.argv[4:8])
rec = {}
for line in open(path, encoding="utf-8"):
    k, _, v = line.rstrip("\n").partition("\t")
    rec[k] = v
step = {k[5:]: dict(zip(("wall", "cpu", "rss"), map(float, v.split())))
        for k, v in rec.items() if k.startswith("step-")}
phase = {k[7:]: v.split() for k, v in rec.items() if k.startswith("phases-")}
verdict = lambda ok: "pass" if ok else "**FAIL**"
dump = step["dump"]["wall"]
ratio = lambda s: step[s]["wall"] / dump if dump > 0 else float("inf")
cell = lambda s: f"{step[s]['wall']:.2f} | {step[s]['cpu']:.2f} | {step[s]['rss']:.0f}"
rows_read = phase.get("changes", [None] * 8)[7]
big = phase["big"]
print("| step | wall s | CPU s | peak RSS MB | × (a) | goal | verdict |")
print("|---|---:|---:|---:|---:|---|:-:|")
print(f"| (a) `ldapsearch -E pr=1000` dump (reference) | {cell('dump')} | 1.00× | | |")
print(f"| (b) initial sync, empty store | {cell('initial')} | {ratio('initial'):.2f}× "
      f"| ≤ {initial_max:g}× | {verdict(ratio('initial') <= initial_max)} |")
print(f"| (c) `--full`, nothing changed | {cell('full')} | {ratio('full'):.2f}× "
      f"| ≤ {full_max:g}× | {verdict(ratio('full') <= full_max)} |")
d_ok = step["changes"]["wall"] <= changes_max and (rows_read is None or int(rows_read) < n)
print(f"| (d) changes read after {mods:,} modifications | {cell('changes')} | {ratio('changes'):.2f}× "
      f"| ≤ {changes_max:g} s, not every entry | {verdict(d_ok)} |")
print(f"| (d) reference: `ldapsearch -E sync=ro/COOKIE` | {cell('changes-ref')} | {ratio('changes-ref'):.2f}× | | |")
big_ok = step["big"]["rss"] <= step["full"]["rss"] * big_max
print(f"| (e) changes read after {n:,} changes | {cell('big')} | {ratio('big'):.2f}× "
      f"| peak RSS ≤ {big_max:g}× (c)'s | {verdict(big_ok)} |")
print(f"| (e) reference: `ldapsearch -E sync=ro/COOKIE` | {cell('big-ref')} | {ratio('big-ref'):.2f}× | | |")
print()
print(f"- (d) read mode **changes**, {rows_read or '?'} records read (`source read rows=` of the "
      f"debug-logged run) of {n:,} entries, {mods:,} updated (checked in every run); "
      f"the cookie-based `ldapsearch` shows the server's share.")
print(f"- (e) read mode **{rec.get('big-mode', '?')}**, {int(big[7]):,} records read (and one "
      f"deletion); peak RSS {step['big']['rss']:.0f} MB ({step['big']['rss'] / step['full']['rss']:.2f}× "
      f"the {step['full']['rss']:.0f} MB of the full read (c), which reads the same entries and also "
      f"finds them unchanged).")
print(f"- slapadd: {float(rec['slapadd']):.2f} s; the {n:,} ldapmodify writes of (e): {float(rec['mods-all']):.1f} s.")
if phase:
    print()
    print("Phase timings (seconds of each phase span's `time.busy`, from runs with "
          "`RUST_LOG=liaison=debug`; *outside* is the process's wall time not in the run's span: "
          "start-up, opening the store, the JSON output):")
    print()
    print("| run | wall s | read | load_state | plan | commit | other phases | outside | records read "
          "| peak RSS MB after state / plan / apply |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {"initial": "(b) initial", "full": "(c) `--full`, unchanged", "changes": "(d) changes",
             "big": f"(e) changes, {n:,} changed"}
    for key, label in names.items():
        if key not in phase:
            continue
        wall, read, state, plan, commit, other, run, rows, peak = phase[key]
        print(f"| {label} | {float(wall):.2f} | {read} | {state} | {plan} | {commit} | {other} "
              f"| {max(float(wall) - float(run), 0):.2f} | {int(rows):,} | {peak.replace('/', ' / ')} |")
    missed = []
    if "initial" in phase and ratio("initial") > initial_max:
        missed.append(("(b)", "initial"))
    if "full" in phase and ratio("full") > full_max:
        missed.append(("(c)", "full"))
    if missed:
        print()
    for label, key in missed:
        wall, read, state, plan, commit = map(float, phase[key][:5])
        budget = dump * (initial_max if key == "initial" else full_max)
        print(f"- {label} missed its goal ({budget:.2f} s = the goal × (a)): of its {wall:.2f} s in the "
              f"debug-logged run, the read took {read:.2f} s ({read / dump:.2f}× the whole dump), "
              f"load_state {state:.2f}, plan {plan:.2f}, commit {commit:.2f}; "
              f"CPU {step[key]['cpu']:.2f} s of liaison against {step['dump']['cpu']:.2f} s of ldapsearch.")
EOF
}

main
