#!/bin/sh
# A Liaison exec plugin (protocol 1, see docs/plugin-protocol.md) in plain
# POSIX shell: reads PEOPLE_FILE, one contact per line as
#   id:name:email:company
# and answers every read in full (it keeps no cursor). Lines starting with #
# and empty lines are skipped; a line without four fields is reported as a bad
# record with its line number. PEOPLE_FILE comes from the source's `env:`.
set -eu

# The start line: this plugin needs nothing from it but the protocol.
IFS= read -r start || { echo "no start line on stdin" >&2; exit 2; }
case "$start" in
  *'"protocol": 1'* | *'"protocol":1'*) ;;
  *) echo "this plugin speaks protocol 1 only" >&2; exit 3 ;;
esac
: "${PEOPLE_FILE:?PEOPLE_FILE is not set (give it in the source's env:)}"

# JSON string escaping for the characters a line of text may hold.
json() {
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g'
}

n=0
while IFS= read -r line || [ -n "$line" ]; do
  n=$((n + 1))
  case "$line" in '' | '#'*) continue ;; esac
  IFS=: read -r id name email company rest <<EOF_LINE
$line
EOF_LINE
  if [ -z "$id" ] || [ -z "$email" ] || [ -n "${rest:-}" ]; then
    printf '{"type":"error","location":"%s:%d","message":"expected id:name:email:company"}\n' \
      "$(json "$PEOPLE_FILE")" "$n"
    continue
  fi
  printf '{"type":"record","key":"%s","attributes":{"name":"%s","email":"%s","account_name":"%s"}}\n' \
    "$(json "$id")" "$(json "$name")" "$(json "$email")" "$(json "$company")"
done < "$PEOPLE_FILE"
printf '{"type":"end","mode":"full","cursor":null}\n'
