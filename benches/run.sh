#!/usr/bin/env bash
# Liaison sync benchmark against the embedded store's reference (`sqlite3 .import`).
#
#   benches/run.sh [SIZES...]          default: 100000 1000000
#
# For each size N (rows), in one run:
#   1. generate a standard-layout CSV with benches/gen_csv.py (cached under
#      target/bench/data/, keyed by N, seed and the generator's checksum);
#   2. time (a) `sqlite3 .import` of that file into a fresh WAL database with a
#      primary key and an e-mail index, in one transaction — the reference;
#      (b) `liaison sync --once` into a fresh store (full);
#      (c) `liaison sync --once` again on unchanged input (no-op);
#      each under `/usr/bin/time -v` for wall time and peak RSS;
#   3. check the results cheaply (full: applied, created > 0; no-op: nothing
#      created, updated, disabled, enabled or deleted) and fail loudly otherwise.
# Then prints a markdown table and rewrites BENCHMARKS.md with it.
#
# Environment: BENCH_SEED (default 42), BENCH_RUNS (default 3: each step runs
# that many times and the table reports medians — this machine kind is shared
# and single runs vary by ±20 %), CARGO_TARGET_DIR (default ./target),
# BENCH_SQLITE_INDEX: `after` (default) builds the e-mail index after the
# import, inside the same transaction — the fastest way sqlite3 itself loads the
# file, and the reference in shared/testenv.md (8.2 s at 1M rows); `before`
# creates it first (random-order index inserts, much slower at 1M rows).
# Needs python3, sqlite3 and GNU time; when run as root it installs the Debian
# packages `sqlite3` and `time` itself if they are missing. The helpers it shares
# with benches/exec.sh (timing, the cached CSVs, the checks) are in benches/lib.sh.
set -euo pipefail

RUNS=${BENCH_RUNS:-3}
SQLITE_INDEX=${BENCH_SQLITE_INDEX:-after}
BENCH_TAG=bench
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Targets (issue requirement 9): ratios to the sqlite3 import, RSS at 1M rows.
FULL_MAX_RATIO=1.5
NOOP_MAX_RATIO=0.3
RSS_MAX_MB=512

parse_sizes "$@"
[[ $SQLITE_INDEX == before || $SQLITE_INDEX == after ]] ||
  die "BENCH_SQLITE_INDEX must be 'before' or 'after', not '$SQLITE_INDEX'"

# sqlite_import N CSV WORKDIR: the reference. Sets IMPORT_S, IMPORT_CPU, IMPORT_RSS.
sqlite_import() {
  local n=$1 csv=$2 dir=$3 header cols=() col defs=() db count index_before="" index_after=""
  db=$dir/import.db
  rm -f "$db" "$db-wal" "$db-shm"
  # The table's columns are the CSV's header, in its order (.import is positional).
  IFS=, read -r -a cols < <(head -n 1 "$csv" | tr -d '\r')
  for col in "${cols[@]}"; do
    if [[ $col == contact_id ]]; then defs+=("\"$col\" TEXT PRIMARY KEY NOT NULL")
    else defs+=("\"$col\" TEXT"); fi
  done
  header=$(IFS=,; printf '%s' "${defs[*]}")
  if [[ $SQLITE_INDEX == before ]]; then
    index_before="CREATE INDEX contacts_email ON contacts(email);"
  else
    index_after="CREATE INDEX contacts_email ON contacts(email);"
  fi
  cat >"$dir/import.sql" <<EOF
.bail on
PRAGMA journal_mode=WAL;
CREATE TABLE contacts($header);
$index_before
BEGIN;
.import --csv --skip 1 '$csv' contacts
$index_after
COMMIT;
EOF
  timed "$dir/import" sqlite3 -bail "$db" ".read '$dir/import.sql'"
  [[ $RC -eq 0 ]] || fail_run "sqlite3 .import ($n rows)" "$dir/import"
  count=$(sqlite3 "$db" 'SELECT count(*) FROM contacts')
  [[ $count -eq $n ]] || die "sqlite3 imported $count rows, expected $n (see $dir/import.err)"
  IMPORT_S=$WALL IMPORT_CPU=$CPU IMPORT_RSS=$RSS_MB
}

bench_size() {
  local n=$1 csv dir expected
  csv=$(csv_for "$n")
  expected=$(<"$csv.expected")
  dir=$BENCH_DIR/run-$n
  rm -rf "$dir"
  mkdir -p "$dir"
  cat "$csv" >/dev/null # every step starts with the file in the page cache

  write_config "$dir" "    type: csv
    path: \"$csv\""
  local imports=() import_cpus=() import_rss=0 fulls=() full_cpus=() full_rss=0
  local noops=() noop_cpus=() noop_rss=0 created=0 full_errors=0 noop_errors=0 r
  for ((r = 1; r <= RUNS; r++)); do
    log "$n rows, run $r/$RUNS: sqlite3 .import (reference)"
    sqlite_import "$n" "$csv" "$dir"
    log "$n rows: sqlite3 .import: $IMPORT_S s, $IMPORT_RSS MB"
    imports+=("$IMPORT_S") import_cpus+=("$IMPORT_CPU")
    import_rss=$(max "$import_rss" "$IMPORT_RSS")

    rm -rf "$dir/state" # a fresh store for every full sync
    log "$n rows, run $r/$RUNS: liaison sync --once (full, fresh store)"
    liaison_sync "$n" full "$dir" full
    log "$n rows: full: $SYNC_S s (CPU $SYNC_CPU s), $SYNC_RSS MB, created $SYNC_CREATED, row errors $SYNC_ERRORS"
    fulls+=("$SYNC_S") full_cpus+=("$SYNC_CPU") created=$SYNC_CREATED full_errors=$SYNC_ERRORS
    full_rss=$(max "$full_rss" "$SYNC_RSS")
    # Not fatal: the table shows the mismatch, the timings are still worth having.
    [[ $created -eq $expected ]] ||
      log "WARNING: $n rows: full sync created $created users, the CSV has $expected distinct e-mails"

    log "$n rows, run $r/$RUNS: liaison sync --once (no-op)"
    liaison_sync "$n" noop "$dir" noop
    log "$n rows: no-op: $SYNC_S s (CPU $SYNC_CPU s), $SYNC_RSS MB, row errors $SYNC_ERRORS"
    noops+=("$SYNC_S") noop_cpus+=("$SYNC_CPU") noop_errors=$SYNC_ERRORS
    noop_rss=$(max "$noop_rss" "$SYNC_RSS")
  done
  IMPORT_S=$(median "${imports[@]}") IMPORT_CPU=$(median "${import_cpus[@]}") IMPORT_RSS=$import_rss
  local full_s full_cpu
  full_s=$(median "${fulls[@]}") full_cpu=$(median "${full_cpus[@]}")
  SYNC_S=$(median "${noops[@]}") SYNC_CPU=$(median "${noop_cpus[@]}") SYNC_RSS=$noop_rss SYNC_ERRORS=$noop_errors
  log "$n rows: medians of $RUNS: import $IMPORT_S s, full $full_s s, no-op $SYNC_S s"

  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$n" "$(stat -c %s "$csv")" "$IMPORT_S" "$IMPORT_RSS" "$full_s" "$full_rss" \
    "$SYNC_S" "$SYNC_RSS" "$created" "$expected" "$full_errors" "$SYNC_ERRORS" \
    "$IMPORT_CPU" "$full_cpu" "$SYNC_CPU" >>"$RESULTS"
}

# render_tables RESULTS: the markdown tables (results and sanity counts).
render_tables() {
  python3 - "$1" "$FULL_MAX_RATIO" "$NOOP_MAX_RATIO" "$RSS_MAX_MB" <<'EOF'
import sys
path, full_max, noop_max, rss_max = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rows = [line.rstrip("\n").split("\t") for line in open(path, encoding="utf-8") if line.strip()]
verdict = lambda ok: "pass" if ok else "**FAIL**"
print(f"| rows | CSV MB | sqlite3 .import s | full sync s (× import) | no-op sync s (× import) "
      f"| peak RSS MB: import / full / no-op | full ≤ {full_max:g}× | no-op ≤ {noop_max:g}× "
      f"| RSS ≤ {rss_max:g} MB |")
print("|---:|---:|---:|---:|---:|---:|:-:|:-:|:-:|")
for n, size, imp, imp_rss, full, full_rss, noop, noop_rss, *_ in rows:
    n, imp, full, noop = int(n), float(imp), float(full), float(noop)
    fr = full / imp if imp > 0 else float("inf")
    nr = noop / imp if imp > 0 else float("inf")
    rss = max(float(full_rss), float(noop_rss))
    # The RSS target is stated for 1,000,000 rows; smaller runs report the same check.
    print(f"| {n:,} | {int(size) / 1e6:.1f} | {imp:.2f} | {full:.2f} ({fr:.2f}×) | {noop:.2f} ({nr:.2f}×) "
          f"| {float(imp_rss):.0f} / {float(full_rss):.0f} / {float(noop_rss):.0f} "
          f"| {verdict(fr <= full_max)} | {verdict(nr <= noop_max)} | {verdict(rss <= rss_max)} |")
print()
print("| rows | users created by the full sync (expected) | row errors reported: full / no-op "
      "| CPU s (user + sys): import / full / no-op |")
print("|---:|---:|---:|---:|")
for n, *_, created, expected, ferr, nerr, imp_cpu, full_cpu, noop_cpu in rows:
    mark = "" if created == expected else " **≠ expected**"
    print(f"| {int(n):,} | {int(created):,} ({int(expected):,}){mark} | {ferr} / {nerr} "
          f"| {imp_cpu} / {full_cpu} / {noop_cpu} |")
EOF
}

write_report() {
  local tables=$1 commit other_sections
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  # Every marked section (<!-- NAME:begin --> … <!-- NAME:end -->) belongs to
  # another script (search.sh, daemon.sh) or is written by hand: kept as it is.
  other_sections=$(awk '/<!-- [a-z0-9-]+:begin -->/ { keep = 1 }
                        keep { print }
                        /<!-- [a-z0-9-]+:end -->/ { keep = 0; print "" }' "$REPORT" 2>/dev/null || true)
  {
    cat <<EOF
# Benchmarks

Liaison's CSV → SQLite sync measured against the embedded store's reference: a
plain \`sqlite3 .import\` of the same standard-layout CSV into a table with a
primary key and an e-mail index, WAL mode, one transaction (see
\`../shared/testenv.md\`, "The embedded store's reference").

Generated by \`benches/run.sh ${SIZES[*]}\` on $(date -u '+%Y-%m-%d %H:%M UTC'); do not edit by hand.

## Results

$tables

- **sqlite3 .import**: fresh database, \`PRAGMA journal_mode=WAL\`, a table with the
  CSV's columns (the standard ones plus \`attributes.licence_key\`), \`contact_id\`
  primary key, an index on \`email\` (created **$SQLITE_INDEX** the import;
  \`BENCH_SQLITE_INDEX=before|after\`), \`.import --csv --skip 1\` between \`BEGIN\`
  and \`COMMIT\`.
- **full sync**: \`liaison --config … sync --once --format json\` on a fresh store
  (the quickstart's embedded defaults: SQLite store, file mail).
- **no-op sync**: the same command again on unchanged input; it must change nothing.
- Wall time and peak RSS from \`/usr/bin/time -v\`; each step runs $RUNS times
  (\`BENCH_RUNS\`) and the tables show the median time and the largest RSS, the
  CSV in the page cache. Targets: full ≤ ${FULL_MAX_RATIO}× import, no-op ≤ ${NOOP_MAX_RATIO}× import,
  peak RSS of liaison ≤ ${RSS_MAX_MB} MB (stated for 1,000,000 rows; smaller sizes show
  the same check).
- Input: \`benches/gen_csv.py N OUT --seed $SEED\` — deterministic, ~125 bytes a row,
  Czech/Slovak/Polish/German/English names with diacritics and some Cyrillic and
  Greek ones, ~N/50 accounts, ~1 % of rows sharing an e-mail with another row, ~2 %
  with \`portal_access=false\`, quoted descriptions with commas, quotes and a few
  newlines. No malformed rows: any row error above is a finding.
${other_sections:+
$other_sections
}
## Machine

- CPUs (\`nproc\`): $(nproc); $(lscpu 2>/dev/null | awk -F': *' '/^Model name/ {print $2; exit}')
- $(rustc --version 2>/dev/null || echo "rustc: unknown"); sqlite3 $(sqlite3 --version | cut -d' ' -f1); $("$LIAISON" --version 2>/dev/null || echo liaison) at commit \`$commit\` (working tree as built)
- Memory (\`free -g\`):

\`\`\`
$(free -g)
\`\`\`

Shared development machine: other builds may have run at the same time, so treat
single-digit percentage differences as noise.

## How to reproduce

\`\`\`sh
benches/run.sh                 # 100,000 and 1,000,000 rows; rewrites BENCHMARKS.md
benches/run.sh 10000 100000    # any sizes
BENCH_SEED=7 benches/run.sh    # another data set
benches/gen_csv.py 1000 /tmp/sample.csv --seed 42   # just the data
\`\`\`

The script builds \`cargo build --release --bin liaison\`, caches generated CSVs in
\`target/bench/data/\` and keeps each size's databases, configs, outputs and
\`time -v\` reports in \`target/bench/run-N/\`. As root it installs the Debian
packages \`sqlite3\` and \`time\` when they are missing. It exits non-zero, without
touching this file, if an import or a sync fails or a sync's JSON output is wrong.
EOF
    # The hand-written profile and next steps, kept beside the script.
    if [ -f "$ROOT/benches/analysis.md" ]; then
      echo
      cat "$ROOT/benches/analysis.md"
    fi
  } >"$REPORT.tmp"
  mv "$REPORT.tmp" "$REPORT"
}

main() {
  ensure_tools sqlite3
  build
  RESULTS=$BENCH_DIR/results.tsv
  : >"$RESULTS"
  for n in "${SIZES[@]}"; do
    bench_size "$n"
  done
  local tables
  tables=$(render_tables "$RESULTS")
  printf '\n%s\n\n' "$tables"
  write_report "$tables"
  log "wrote $REPORT"
}

main
