#!/usr/bin/env python3
"""A Liaison exec plugin (protocol 1, see docs/plugin-protocol.md) reading a
JSON export of contacts, with change reads on a modification column.

The export is a JSON array of objects, one per contact:

    {"id": "c-1", "name": "Jiří Dvořák", "email": "jiri@acme.example",
     "company": "ACME s.r.o.", "company_id": "acme", "roles": ["support", "sales"],
     "modified": "2026-12-01T10:00:00Z", "deleted": false}

`id` is the record's key; `modified` (RFC 3339, UTC, so text order is time
order) says when the row last changed; a removed contact stays in the export
as a tombstone with `"deleted": true` until the next export drops it.

Settings (`settings:` in the source's config):
    export:   the export file, relative to the plugin's working directory
    modified: the modification column (default "modified")

A full read sends every contact that is not deleted. A changes read sends the
rows modified at or after the cursor: changed ones as records, tombstones as
deletions. Rows modified exactly at the cursor are sent again (harmless: the
host finds them unchanged), so a row written in the same second as the last
read is never missed. The cursor is {"modified_since": TIME}, the latest
modification time seen.
"""

import json
import sys

PROTOCOL = 1


def emit(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def log(level, message):
    emit({"type": "log", "level": level, "message": message})


def attributes(row, modified):
    """Every field but the bookkeeping ones; lists stay lists (multi-valued)."""
    out = {}
    for name, value in row.items():
        if name in ("id", "deleted", modified) or value is None:
            continue
        if isinstance(value, list):
            out[name] = [str(v) for v in value]
        else:
            out[name] = str(value)
    return out


def main():
    start = json.loads(sys.stdin.readline())
    if start.get("protocol") != PROTOCOL:
        print(f"this plugin speaks protocol {PROTOCOL}, not {start.get('protocol')}", file=sys.stderr)
        return 3
    settings = start.get("settings") or {}
    modified = settings.get("modified", "modified")
    try:
        with open(settings["export"], encoding="utf-8") as f:
            rows = json.load(f)
    except KeyError:
        print("settings.export is required", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"cannot read the export: {e}", file=sys.stderr)
        return 1

    cursor = start.get("cursor") or {}
    since = cursor.get("modified_since") if start["mode"] == "changes" else None
    mode = "changes" if since is not None else "full"
    latest = since or ""
    sent = 0
    for n, row in enumerate(rows, start=1):
        key = row.get("id")
        stamp = row.get(modified)
        if not isinstance(key, str) or not key or not isinstance(stamp, str):
            # Reported and skipped; with a key the contact keeps its links.
            bad = {"type": "error", "location": f"{settings['export']} item {n}",
                   "message": f"needs a text id and a text {modified}"}
            if isinstance(key, str) and key:
                bad["key"] = key
            emit(bad)
            continue
        latest = max(latest, stamp)
        if since is not None and stamp < since:
            continue
        if row.get("deleted"):
            if mode == "changes":
                emit({"type": "deleted", "key": key})
            continue
        emit({"type": "record", "key": key, "attributes": attributes(row, modified)})
        sent += 1
    log("info", f"{mode} read of {settings['export']}: {sent} records")
    emit({"type": "end", "mode": mode, "cursor": {"modified_since": latest} if latest else None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
