#!/usr/bin/env bash
# The exec protocol's overhead (issue 11): the same contacts read by an exec
# plugin and as a CSV file, into an empty store and again unchanged.
#
#   benches/exec.sh [SIZES...]          default: 100000 1000000
#
# For each size N (rows):
#   1. the standard-layout CSV of benches/run.sh (benches/gen_csv.py, cached in
#      target/bench/data/), and the same contacts as an exec plugin's stdout,
#      made once by benches/csv_to_jsonl.py and cached next to the CSV (keyed by
#      the CSV's name and the converter's checksum; the conversion is timed once
#      and its `time -v` report kept beside it);
#   2. times, each under `/usr/bin/time -v` (wall, CPU of the process and the
#      children it waited for, peak RSS):
#      (a) `liaison sync --once` of a CSV source (fresh store),
#      (b) the same again, unchanged,
#      (c) `liaison sync --once` of an exec source `command: [cat, OUT.jsonl]`
#          (fresh store, `timeout: 30m`),
#      (d) the same again, unchanged;
#      and, for context, the plugin alone (`cat OUT.jsonl > /dev/null`);
#   3. checks each result: applied; (a) and (c) create CSV.expected users; (b)
#      and (d) change nothing; and fails loudly otherwise;
#   4. unless BENCH_PHASES=0, runs (a)–(d) once more with RUST_LOG=liaison=debug
#      for the phase timings (the `close time.busy` of each phase's span) and
#      the peak RSS the run logs after each phase.
# Prints the tables and rewrites only the exec section of BENCHMARKS.md
# (between the `exec:begin` and `exec:end` markers, by
# benches/write_section.py; benches/run.sh keeps it). benches/exec-notes.md,
# the hand-written reading of a profile, is appended to the section.
#
# Environment: BENCH_SEED (42), BENCH_RUNS (1: each of (a)–(d) and the plugin
# alone runs that many times on fresh stores; the tables show median times and
# the largest RSS), BENCH_PHASES (1), CARGO_TARGET_DIR (./target). Needs python3
# and GNU time (as root, installs `time` when it is missing).
set -euo pipefail

RUNS=${BENCH_RUNS:-1}
PHASES=${BENCH_PHASES:-1}
BENCH_TAG=exec
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CONV=$ROOT/benches/csv_to_jsonl.py
unset RUST_LOG # the timed runs log as they would by default
NOTES=$ROOT/benches/exec-notes.md

parse_sizes "$@"
[[ $PHASES == 0 || $PHASES == 1 ]] || die "BENCH_PHASES must be 0 or 1, not '$PHASES'"

# jsonl_for CSV: prints the path of the (cached) plugin output with CSV's
# contacts; its conversion's `time -v` report is JSONL.gen.time.
jsonl_for() {
  local csv=$1 conv_sum jsonl
  conv_sum=$(sha256sum "$CONV" | cut -c1-10)
  jsonl=${csv%.csv}-conv$conv_sum.jsonl
  if [[ ! -s $jsonl || ! -s $jsonl.gen.time ]]; then
    log "converting to $jsonl"
    timed "$jsonl.gen" python3 "$CONV" "$csv" "$jsonl"
    [[ $RC -eq 0 ]] || fail_run "csv_to_jsonl.py $csv" "$jsonl.gen"
    log "converted in $WALL s (CPU $CPU s)"
  else
    log "reusing $jsonl"
  fi
  printf '%s\n' "$jsonl"
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# phases FILE: the phase timings of a debug-logged run's stderr as
# "read<TAB>state<TAB>plan<TAB>commit<TAB>other<TAB>run<TAB>peak MB after state / plan / apply"
# (seconds; other = the remaining phases inside the run's span).
phases() {
  python3 - "$1" <<'EOF'
import re, sys
unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
def secs(v):
    m = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s)", v)
    return float(m.group(1)) * unit[m.group(2)]
spans, peaks = {}, {}
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.search(r" run\{[^}]*\}(?::(\w+)(?:\{[^}]*\})?)?: \S+: close time\.busy=(\S+)", line)
    if m:
        name = m.group(1) or "run"
        spans[name] = spans.get(name, 0.0) + secs(m.group(2))
        continue
    m = re.search(r": (state loaded|planned|applied) .*peak_mb=(\d+)", line)
    if m:
        peaks[m.group(1)] = m.group(2)
if "run" not in spans or "read" not in spans:
    sys.exit(f"{sys.argv[1]}: no phase timings (is RUST_LOG=liaison=debug honoured?)")
main = {k: spans.get(k, 0.0) for k in ("read", "load_state", "plan", "commit")}
other = max(spans["run"] - sum(main.values()), 0.0)
peak = " / ".join(peaks.get(k, "?") for k in ("state loaded", "planned", "applied"))
print("\t".join(f"{v:.2f}" for v in (*main.values(), other, spans["run"])) + f"\t{peak}")
EOF
}

bench_size() {
  local n=$1 csv jsonl expected dir load_start
  load_start=$(load1)
  csv=$(csv_for "$n")
  expected=$(<"$csv.expected")
  jsonl=$(jsonl_for "$csv")
  time_report "$jsonl.gen"
  local gen_s=$WALL gen_cpu=$CPU
  dir=$BENCH_DIR/exec-$n
  rm -rf "$dir"
  mkdir -p "$dir/csv" "$dir/exec"
  write_config "$dir/csv" "    type: csv
    path: \"$csv\""
  write_config "$dir/exec" "    type: exec
    command: [cat, \"$jsonl\"]
    timeout: 30m"
  cat "$csv" "$jsonl" >/dev/null # every step starts with the files in the page cache

  local plugin=() plugin_cpu=() r kind
  for ((r = 1; r <= RUNS; r++)); do
    TIMED_STDOUT=/dev/null timed "$dir/plugin" cat "$jsonl"
    [[ $RC -eq 0 ]] || fail_run "cat $jsonl" "$dir/plugin"
    plugin+=("$WALL") plugin_cpu+=("$CPU")
  done
  log "$n rows: the plugin alone (cat > /dev/null): $(median "${plugin[@]}") s"

  # Per kind (csv, exec) and step (full, noop): times, CPU, the largest RSS.
  declare -A wall=() cpu=() rss=() created=() errors=() mode=()
  for ((r = 1; r <= RUNS; r++)); do
    for kind in csv exec; do
      rm -rf "$dir/$kind/state" # a fresh store for every full sync
      local step
      for step in full noop; do
        log "$n rows, run $r/$RUNS: $kind source, $step"
        liaison_sync "$n" "$step" "$dir/$kind" "$step"
        log "$n rows: $kind $step: $SYNC_S s (CPU $SYNC_CPU s), $SYNC_RSS MB, created $SYNC_CREATED, row errors $SYNC_ERRORS, read $SYNC_READ"
        if [[ $step == full && $SYNC_CREATED -ne $expected ]]; then
          die "$n rows: the $kind full sync created $SYNC_CREATED users, the CSV has $expected distinct e-mails"
        fi
        wall[$kind-$step]+="$SYNC_S " cpu[$kind-$step]+="$SYNC_CPU "
        rss[$kind-$step]=$(max "${rss[$kind-$step]:-0}" "$SYNC_RSS")
        created[$kind-$step]=$SYNC_CREATED errors[$kind-$step]=$SYNC_ERRORS mode[$kind-$step]=$SYNC_READ
      done
    done
  done

  local row=("$n" "$(stat -c %s "$csv")" "$(stat -c %s "$jsonl")" "$expected" "$gen_s" "$gen_cpu"
    "$(median "${plugin[@]}")" "$(median "${plugin_cpu[@]}")")
  local key
  for key in csv-full csv-noop exec-full exec-noop; do
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    row+=("$(median ${wall[$key]})" "$(median ${cpu[$key]})" "${rss[$key]}"
      "${created[$key]}" "${errors[$key]}" "${mode[$key]}")
  done

  if [[ $PHASES == 1 ]]; then
    for kind in csv exec; do
      rm -rf "$dir/$kind/state"
      for step in full noop; do
        log "$n rows: $kind source, $step, with RUST_LOG=liaison=debug (phase timings)"
        RUST_LOG=liaison=debug liaison_sync "$n" "$step-debug" "$dir/$kind" "$step"
        local timings
        timings=$(phases "$dir/$kind/$step-debug.err") || die "no phase timings in $dir/$kind/$step-debug.err"
        printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$kind" "$step" "$SYNC_S" "$timings" >>"$PHASE_RESULTS"
      done
    done
  fi
  row+=("$load_start" "$(load1)")
  (IFS=$'\t'; printf '%s\n' "${row[*]}") >>"$RESULTS"
}

# render_tables RESULTS PHASE_RESULTS: the section's tables and computed reading.
render_tables() {
  python3 - "$1" "$2" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
phases = [l.rstrip("\n").split("\t") for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
steps = ("csv-full", "csv-noop", "exec-full", "exec-noop")
parsed = []
for r in rows:
    d = {"n": int(r[0]), "csv_mb": int(r[1]) / 1e6, "jsonl_mb": int(r[2]) / 1e6, "expected": int(r[3]),
         "gen_s": float(r[4]), "gen_cpu": float(r[5]), "plugin_s": float(r[6]), "plugin_cpu": float(r[7]),
         "load": (r[32], r[33])}
    for i, s in enumerate(steps):
        w, c, m, created, errors, mode = r[8 + 6 * i: 14 + 6 * i]
        d[s] = {"wall": float(w), "cpu": float(c), "rss": float(m), "created": int(created),
                "errors": int(errors), "mode": mode}
    parsed.append(d)

z = lambda x: round(x, 2) + 0.0  # no "-0.00"
ratio = lambda a, b: f"{a / b:.2f}×" if b > 0 else "—"
cell = lambda s: f"{s['wall']:.2f} / {s['cpu']:.2f} / {s['rss']:.0f}"
print("Each cell: wall s / CPU s (user + sys, the plugin's included) / peak RSS MB.")
print()
print("| rows | CSV MB / JSONL MB | (a) CSV, full | (b) CSV, unchanged | (c) exec, full | (d) exec, unchanged |")
print("|---:|---:|---:|---:|---:|---:|")
for d in parsed:
    print(f"| {d['n']:,} | {d['csv_mb']:.1f} / {d['jsonl_mb']:.1f} | " + " | ".join(cell(d[s]) for s in steps) + " |")
print()
print("| rows | exec ÷ CSV, full: wall (CPU) | exec ÷ CSV, unchanged: wall (CPU) "
      "| exec − CSV peak RSS MB: full / unchanged |")
print("|---:|---:|---:|---:|")
for d in parsed:
    ef, cf, en, cn = d["exec-full"], d["csv-full"], d["exec-noop"], d["csv-noop"]
    print(f"| {d['n']:,} | {ratio(ef['wall'], cf['wall'])} ({ratio(ef['cpu'], cf['cpu'])}) "
          f"| {ratio(en['wall'], cn['wall'])} ({ratio(en['cpu'], cn['cpu'])}) "
          f"| {round(ef['rss'] - cf['rss']) + 0:+d} / {round(en['rss'] - cn['rss']) + 0:+d} |")
print()
print("| rows | plugin alone (`cat > /dev/null`) s | JSONL made by csv_to_jsonl.py: s (CPU s) "
      "| users created (a) / (c) (expected) | row errors (a) / (b) / (c) / (d) | read mode (c) / (d) "
      "| load average (1 min) at start / end |")
print("|---:|---:|---:|---:|---:|:-:|---:|")
for d in parsed:
    print(f"| {d['n']:,} | {d['plugin_s']:.2f} | {d['gen_s']:.2f} ({d['gen_cpu']:.2f}) "
          f"| {d['csv-full']['created']:,} / {d['exec-full']['created']:,} ({d['expected']:,}) "
          f"| {' / '.join(str(d[s]['errors']) for s in steps)} "
          f"| {d['exec-full']['mode']} / {d['exec-noop']['mode']} | {d['load'][0]} / {d['load'][1]} |")

if len(parsed) >= 2:
    lo, hi = parsed[0], parsed[-1]
    print()
    for step, label in (("full", "full"), ("noop", "unchanged")):
        a = round(lo[f"exec-{step}"]["rss"] - lo[f"csv-{step}"]["rss"]) + 0
        b = round(hi[f"exec-{step}"]["rss"] - hi[f"csv-{step}"]["rss"]) + 0
        own = round(hi[f"csv-{step}"]["rss"] - lo[f"csv-{step}"]["rss"]) + 0
        # Bounded: the overhead grows by no more than 16 MB (allocator and
        # page-cache noise) while the records grow by the sizes' factor.
        verdict = "bounded" if b - a <= 16 else "**growing**"
        print(f"- Peak RSS overhead of exec over CSV, {label} runs: {a:+d} MB at {lo['n']:,} rows, "
              f"{b:+d} MB at {hi['n']:,} ({hi['n'] / lo['n']:g}× the records; the CSV run's own peak "
              f"grew by {own:+d} MB): **{verdict}** (the rule: it grows by 16 MB at most).")

if phases:
    print()
    print("Phase timings from one more run of each with `RUST_LOG=liaison=debug` (seconds of "
          "each phase span's `time.busy`; *outside* is the process's wall time not in the run's "
          "span: start-up, opening the store, the JSON output):")
    print()
    print("| rows | run | wall s | read | load_state | plan | commit | other phases | outside "
          "| peak RSS MB after state / plan / apply |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, kind, step, wall, read, state, plan, commit, other, run, peak in phases:
        label = f"{kind}, {'full' if step == 'full' else 'unchanged'}"
        print(f"| {int(n):,} | {label} | {float(wall):.2f} | {read} | {state} | {plan} | {commit} "
              f"| {other} | {max(float(wall) - float(run), 0):.2f} | {peak} |")
    by = {(int(p[0]), p[1], p[2]): p for p in phases}
    print()
    for n in sorted({int(p[0]) for p in phases}):
        for step, label in (("full", "full"), ("noop", "unchanged")):
            c, e = by.get((n, "csv", step)), by.get((n, "exec", step))
            if not c or not e:
                continue
            dwall = float(e[3]) - float(c[3])
            dread = float(e[4]) - float(c[4])
            drest = (float(e[9]) - float(e[4])) - (float(c[9]) - float(c[4]))
            print(f"- {n:,} rows, {label}: exec took {z(dwall):+.2f} s against CSV in these runs; "
                  f"its read phase {float(e[4]):.2f} s against {float(c[4]):.2f} s ({z(dread):+.2f} s), "
                  f"the rest of the run {z(drest):+.2f} s.")
EOF
}

main() {
  ensure_tools
  build liaison-exec
  RESULTS=$BENCH_DIR/exec-results.tsv PHASE_RESULTS=$BENCH_DIR/exec-phases.tsv
  : >"$RESULTS"
  : >"$PHASE_RESULTS"
  local load_start n tables commit RUNS_ENV=""
  [[ $RUNS == 1 ]] || RUNS_ENV="BENCH_RUNS=$RUNS "
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  for n in "${SIZES[@]}"; do
    bench_size "$n"
  done
  tables=$(render_tables "$RESULTS" "$PHASE_RESULTS")
  printf '\n%s\n\n' "$tables"
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  {
    cat <<EOF
## Exec plugins (issue 11)

Generated by \`${RUNS_ENV}benches/exec.sh ${SIZES[*]}\` on $(date -u '+%Y-%m-%d %H:%M UTC'); do not edit by hand
(but \`benches/exec-notes.md\`, appended below).
$("$LIAISON" --version 2>/dev/null || echo liaison) (release) at commit \`$commit\` (working tree as built);
$(nproc) CPUs ($(lscpu 2>/dev/null | awk -F': *' '/^Model name/ {print $2; exit}')), shared: load average
(1, 5, 15 min) $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end — other builds and
tests were running, so treat ±20 % as noise. $RUNS run(s) of each step (\`BENCH_RUNS\`, default 1;
median times and the largest RSS when more). The issue sets no target for this benchmark
beyond reporting the ratio and showing that the memory is bounded.

The same contacts two ways: the standard-layout CSV of \`benches/run.sh\`
(\`benches/gen_csv.py N OUT --seed $SEED\`) as a \`type: csv\` source, and that CSV
turned into an exec plugin's stdout by \`benches/csv_to_jsonl.py IN.csv OUT.jsonl\`
(one \`record\` line a row, the contact id as its \`key\`, the other non-empty columns as
text attributes, then \`{"type":"end","mode":"full","cursor":null}\`), served by a
\`type: exec\` source with \`command: [cat, OUT.jsonl]\` and \`timeout: 30m\` — so the
plugin does no work of its own and what is measured is the host's side of the protocol.
Both sources use the standard layout (no \`map:\`) and the quickstart's embedded
defaults (SQLite store, file mail). Steps, each \`liaison --config … sync --once --format json\`
under \`/usr/bin/time -v\`, both files in the page cache: (a) CSV into a fresh store, (b) again
unchanged, (c) exec into a fresh store, (d) again unchanged. Checked: every run applied,
(a) and (c) create the CSV's distinct e-mails (\`.expected\`), (b) and (d) change nothing.
The plugin ends with no cursor, so (d) is a full read too, like (b).

$tables

\`\`\`sh
benches/exec.sh                   # 100,000 and 1,000,000 rows; rewrites this section
benches/exec.sh 10000             # any sizes
BENCH_RUNS=3 benches/exec.sh      # medians of three
BENCH_PHASES=0 benches/exec.sh    # without the debug-logged phase runs
\`\`\`

Files: \`target/bench/exec-N/{csv,exec}/\` (configs, stores, outputs, \`time -v\` reports,
the debug logs \`*-debug.err\`); the JSONL is cached beside the CSV in \`target/bench/data/\`.
EOF
    if [[ -f $NOTES ]]; then
      echo
      cat "$NOTES"
    fi
  } >"$BENCH_DIR/exec-section.md"
  python3 "$ROOT/benches/write_section.py" "$REPORT" exec <"$BENCH_DIR/exec-section.md"
  log "BENCHMARKS.md: exec section rewritten"
}

main
