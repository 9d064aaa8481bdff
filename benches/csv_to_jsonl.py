#!/usr/bin/env python3
"""Turn a standard-layout CSV (benches/gen_csv.py) into the stdout of an exec
plugin (protocol 1, docs/plugin-protocol.md) holding the same contacts:

    benches/csv_to_jsonl.py IN.csv OUT.jsonl

Each row becomes `{"type": "record", "key": CONTACT_ID, "attributes": {...}}`
with every other non-empty column as a text attribute (so the standard layout
maps it to the same contact as the CSV row), then one `end` line of a full
read without a cursor. The exec benchmark serves the file with `cat`, so what
it measures is the host's side of the protocol, not a plugin's own work.
"""

import csv
import json
import os
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    source, target = argv
    tmp = f"{target}.tmp{os.getpid()}"
    try:
        with open(source, encoding="utf-8", newline="") as f, open(tmp, "w", encoding="utf-8") as out:
            for row in csv.DictReader(f):
                key = row.pop("contact_id")
                attributes = {k: v for k, v in row.items() if v}
                out.write(json.dumps({"type": "record", "key": key, "attributes": attributes},
                                     ensure_ascii=False, separators=(",", ":")))
                out.write("\n")
            out.write('{"type":"end","mode":"full","cursor":null}\n')
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
