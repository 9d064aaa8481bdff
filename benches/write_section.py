#!/usr/bin/env python3
"""Rewrites one bench's own section of BENCHMARKS.md, leaving the rest as it is.

Usage: benches/write_section.py REPORT NAME <SECTION

SECTION (stdin) is the section's Markdown, without its markers; it is written
between `<!-- NAME:begin -->` and `<!-- NAME:end -->`. An existing NAME section
is replaced in place; otherwise the new one goes before the `## Machine`
heading (benches/run.sh keeps every marked section there when it rewrites the
file), or at the end when there is none. REPORT is replaced atomically and
created when missing. Used by benches/mail.sh, search.sh and daemon.sh.
"""

import os
import re
import sys


def main():
    if len(sys.argv) != 3 or not re.fullmatch(r"[a-z0-9-]+", sys.argv[2]):
        sys.exit("usage: write_section.py REPORT NAME <SECTION  (NAME: [a-z0-9-]+)")
    report, name = sys.argv[1], sys.argv[2]
    body = sys.stdin.read().strip("\n")
    if not body:
        sys.exit(f"write_section.py: the {name} section is empty; {report} left as it is")
    section = f"<!-- {name}:begin -->\n{body}\n<!-- {name}:end -->"
    try:
        with open(report, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""

    marked = re.compile(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->", re.S)
    machine = re.compile(r"^## Machine$", re.M)
    if marked.search(text):
        text = marked.sub(lambda _: section, text, count=1)
    elif machine.search(text):
        at = machine.search(text).start()
        text = text[:at] + section + "\n\n" + text[at:]
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + section + "\n"

    temp = f"{report}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temp, report)


if __name__ == "__main__":
    main()
