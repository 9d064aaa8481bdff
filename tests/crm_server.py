#!/usr/bin/env python3
"""An emulated CRM API for the crm connector's tests: Daktela v6 or HubSpot v3
on 127.0.0.1, answering the published paths with the published JSON shapes.

    python3 tests/crm_server.py --preset daktela|hubspot --dir DIR --token TOKEN

Prints `READY <port>` once listening. Everything it serves comes from
DIR/data.json, read afresh on every request, so a test changes the CRM by
rewriting that file:

- daktela: {"time": "Y-m-d H:i:s" (optional: `_time`, else the local clock),
            "contacts": [{"name", "title", "edited", "account": NAME,
                          "customFields": {...}, ...}],
            "accounts": [{"name", "title", "customFields": {...}, ...}]}
  A contact's `account` is served as Daktela embeds it, `{"name", "title"}`.
- hubspot: {"contacts": [{"id", "properties": {...}, "companies": [IDS],
                          "primary": ID, "archived": false, "archivedAt": ISO}],
            "companies": [{"id", "properties": {...}}]}
  `properties.lastmodifieddate` is an ISO time; the primary company is
  associated with both `contact_to_company` and `contact_to_company_unlabeled`.

Faults, from DIR/faults.json (a list, re-read on every request): each
`{"path": P, "query": {K: V}, "body": {K: V}, "status": S, "retry_after": N,
"delay": SECONDS, "times": N}` matches requests to path P whose query (and,
for POST, JSON body) hold those values; it answers S (with `Retry-After: N`)
or waits `delay` seconds first, `times` times (-1: always).

Each request is appended to DIR/requests.log as one JSON line:
{"method", "path", "query", "body", "status", "gzip"}.
"""

import argparse
import gzip
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

LOCK = threading.RLock()
ARGS = None

HUBSPOT_DEFAULT_PROPERTIES = ["createdate", "hs_object_id", "lastmodifieddate"]
SEARCH_CAP = 10_000
SEARCH_MAX_LIMIT = 200
LIST_MAX_LIMIT = 100
BATCH_MAX_INPUTS = 100


CACHE = {}


def load(name, default):
    """A JSON file of the folder, parsed again only when it changed."""
    path = os.path.join(ARGS.dir, name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return default
    # Tests replace data.json by a rename: a new inode is a new file.
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    cacheable = name == "data.json"
    with LOCK:
        cached = CACHE.get(path)
        if cacheable and cached and cached[0] == stamp:
            return cached[1]
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if cacheable:
        with LOCK:
            CACHE[path] = (stamp, data)
    return data


def iso_ms(text):
    """An ISO time (…Z) as epoch ms."""
    if text is None:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def take_fault(method, path, query, body):
    """The first fault matching this request, its count taken down."""
    with LOCK:
        faults = load("faults.json", [])
        for i, fault in enumerate(faults):
            if fault.get("path") != path:
                continue
            if fault.get("method", method) != method:
                continue
            if any(query.get(k) != str(v) for k, v in fault.get("query", {}).items()):
                continue
            if any((body or {}).get(k) != v for k, v in fault.get("body", {}).items()):
                continue
            times = fault.get("times", 1)
            if times == 0:
                continue
            if times > 0:
                fault["times"] = times - 1
                with open(os.path.join(ARGS.dir, "faults.json"), "w", encoding="utf-8") as f:
                    json.dump(faults, f)
            return fault
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet; the request log says it all
        pass

    # -- plumbing ---------------------------------------------------------
    def reply(self, status, payload, headers=None):
        body = json.dumps(payload).encode()
        zipped = "gzip" in (self.headers.get("Accept-Encoding") or "")
        if zipped:
            body = gzip.compress(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        if zipped:
            self.send_header("Content-Encoding", "gzip")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.log(status, zipped)

    def log(self, status, zipped):
        entry = {
            "method": self.command,
            "path": self.path_only,
            "query": self.query,
            "body": self.json_body,
            "status": status,
            "gzip": zipped,
        }
        with LOCK:
            with open(os.path.join(ARGS.dir, "requests.log"), "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def handle_any(self):
        parts = urlsplit(self.path)
        self.path_only = parts.path
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.json_body = None
        if raw:
            try:
                self.json_body = json.loads(raw)
            except ValueError:
                return self.reply(400, {"status": "error", "message": "Invalid JSON"})
        fault = take_fault(self.command, self.path_only, self.query, self.json_body)
        if fault:
            if fault.get("delay"):
                time.sleep(fault["delay"])
            if fault.get("status"):
                headers = {}
                if "retry_after" in fault:
                    headers["Retry-After"] = fault["retry_after"]
                return self.reply(fault["status"], self.error_body(fault["status"]), headers)
        if not self.authorized():
            return self.reply(401, self.error_body(401))
        if ARGS.preset == "daktela":
            return self.daktela()
        return self.hubspot()

    do_GET = handle_any
    do_POST = handle_any

    def authorized(self):
        if ARGS.preset == "daktela":
            given = self.headers.get("X-AUTH-TOKEN") or self.query.get("accessToken")
            return given == ARGS.token
        return self.headers.get("Authorization") == f"Bearer {ARGS.token}"

    def error_body(self, status):
        if ARGS.preset == "daktela":
            messages = {401: "Unauthorized", 429: "Too many requests"}
            return {"error": [messages.get(status, f"Error {status}")], "result": None, "_time": self.now_local()}
        if status == 401:
            return {
                "status": "error",
                "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "correlationId": "4f0c6a9e-0000-0000-0000-000000000000",
                "category": "INVALID_AUTHENTICATION",
            }
        if status == 429:
            return {
                "status": "error",
                "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": "4f0c6a9e-0000-0000-0000-000000000001",
                "policyName": "SECONDLY",
            }
        return {"status": "error", "message": "internal error", "correlationId": "x", "category": "INTERNAL_ERROR"}

    def now_local(self):
        return datetime.now().strftime("%Y-%m-%d %H:%M:%S")

    # -- Daktela v6 -------------------------------------------------------
    def daktela(self):
        data = load("data.json", {})
        if self.command != "GET":
            return self.reply(405, {"error": ["Method not allowed"], "result": None})
        accounts = {a["name"]: a for a in data.get("accounts", [])}
        if self.path_only == "/api/v6/contacts.json":
            items = []
            for c in data.get("contacts", []):
                c = dict(c)
                if isinstance(c.get("account"), str):
                    a = accounts.get(c["account"], {"name": c["account"], "title": c["account"]})
                    c["account"] = {"name": a["name"], "title": a.get("title")}
                items.append(c)
        elif self.path_only == "/api/v6/accounts.json":
            items = list(accounts.values())
        else:
            return self.reply(404, {"error": ["Not found"], "result": None, "_time": self.now_local()})
        try:
            items = self.daktela_filter(items)
        except ValueError as e:
            return self.reply(400, {"error": [str(e)], "result": None, "_time": self.now_local()})
        for i in range(4, -1, -1):
            field = self.query.get(f"sort[{i}][field]")
            if field:
                reverse = self.query.get(f"sort[{i}][dir]", "asc") == "desc"
                items.sort(key=lambda x: str(x.get(field) or ""), reverse=reverse)
        total = len(items)
        skip = int(self.query.get("skip", 0))
        take = min(int(self.query.get("take", 100)), 1000)
        page = items[skip : skip + take]
        return self.reply(200, {"error": [], "result": {"data": page, "total": total}, "_time": data.get("time") or self.now_local()})

    def daktela_filter(self, items):
        i = 0
        while f"filter[{i}][field]" in self.query:
            field = self.query[f"filter[{i}][field]"]
            op = self.query.get(f"filter[{i}][operator]", "eq")
            value = self.query.get(f"filter[{i}][value]")
            values = [v for k, v in sorted(self.query.items()) if k.startswith(f"filter[{i}][value][")]

            def keep(item):
                got = item.get(field)
                got = "" if got is None else str(got)
                if op == "eq":
                    return got == value
                if op == "neq":
                    return got != value
                if op == "gte":
                    return got >= value
                if op == "gt":
                    return got > value
                if op == "lte":
                    return got <= value
                if op == "lt":
                    return got < value
                if op == "in":
                    return got in values
                if op == "like":
                    return value.strip("%") in got
                raise ValueError(f"Unknown operator {op}")

            items = [x for x in items if keep(x)]
            i += 1
        return items

    # -- HubSpot v3 -------------------------------------------------------
    def hubspot(self):
        data = load("data.json", {})
        contacts = data.get("contacts", [])
        companies = {c["id"]: c for c in data.get("companies", [])}
        p = self.path_only
        if p == "/crm/v3/objects/contacts" and self.command == "GET":
            return self.hubspot_list(contacts)
        if p == "/crm/v3/objects/contacts/search" and self.command == "POST":
            return self.hubspot_search(contacts)
        if p == "/crm/v3/objects/companies/batch/read" and self.command == "POST":
            return self.hubspot_companies(companies)
        if p == "/crm/v4/associations/contacts/companies/batch/read" and self.command == "POST":
            return self.hubspot_associations(contacts)
        return self.reply(404, {"status": "error", "message": "Resource not found", "category": "OBJECT_NOT_FOUND"})

    def contact_json(self, c, properties, associations):
        props = {k: v for k, v in c.get("properties", {}).items() if k in properties or k in HUBSPOT_DEFAULT_PROPERTIES}
        props.setdefault("hs_object_id", c["id"])
        modified = c.get("properties", {}).get("lastmodifieddate", "2024-01-01T00:00:00.000Z")
        out = {
            "id": c["id"],
            "properties": props,
            "createdAt": c.get("properties", {}).get("createdate", "2024-01-01T00:00:00.000Z"),
            "updatedAt": modified,
            "archived": bool(c.get("archived")),
        }
        if c.get("archived"):
            out["archivedAt"] = c.get("archivedAt", modified)
        if associations:
            results = []
            for cid in c.get("companies", []):
                if cid == c.get("primary"):
                    results.append({"id": cid, "type": "contact_to_company"})
                results.append({"id": cid, "type": "contact_to_company_unlabeled"})
            if results:
                out["associations"] = {"companies": {"results": results}}
        return out

    def hubspot_list(self, contacts):
        limit = int(self.query.get("limit", 10))
        if limit > LIST_MAX_LIMIT:
            return self.reply(400, {"status": "error", "message": f"limit may not exceed {LIST_MAX_LIMIT}", "category": "VALIDATION_ERROR"})
        archived = self.query.get("archived", "false") == "true"
        properties = [x for x in self.query.get("properties", "").split(",") if x]
        associations = self.query.get("associations", "") == "companies"
        rows = sorted((c for c in contacts if bool(c.get("archived")) == archived), key=lambda c: int(c["id"]))
        after = int(self.query.get("after", 0))
        rows = [c for c in rows if int(c["id"]) >= after]
        page, rest = rows[:limit], rows[limit:]
        body = {"results": [self.contact_json(c, properties, associations) for c in page]}
        if rest:
            nxt = rest[0]["id"]
            body["paging"] = {"next": {"after": nxt, "link": f"https://api.hubapi.com/crm/v3/objects/contacts?after={nxt}"}}
        return self.reply(200, body)

    def hubspot_search(self, contacts):
        body = self.json_body or {}
        limit = int(body.get("limit", 10))
        after = int(body.get("after", 0) or 0)
        if limit > SEARCH_MAX_LIMIT:
            return self.reply(400, {"status": "error", "message": f"limit must be at most {SEARCH_MAX_LIMIT}", "category": "VALIDATION_ERROR"})
        if after + limit > SEARCH_CAP:
            return self.reply(400, {"status": "error", "message": f"Search results are limited to {SEARCH_CAP}", "category": "VALIDATION_ERROR"})
        rows = [c for c in contacts if not c.get("archived")]

        def value(c, prop):
            if prop == "hs_object_id":
                return int(c["id"])
            v = c.get("properties", {}).get(prop)
            if prop in ("lastmodifieddate", "createdate"):
                return iso_ms(v)
            return v

        def matches(c, f):
            got = value(c, f["propertyName"])
            want = f.get("value")
            if f["propertyName"] in ("lastmodifieddate", "createdate", "hs_object_id"):
                want = int(want)
            op = f["operator"]
            if got is None:
                return op == "NOT_HAS_PROPERTY"
            return {
                "EQ": got == want,
                "NEQ": got != want,
                "GT": got > want,
                "GTE": got >= want,
                "LT": got < want,
                "LTE": got <= want,
                "HAS_PROPERTY": True,
            }[op]

        groups = body.get("filterGroups", [])
        if groups:
            rows = [c for c in rows if any(all(matches(c, f) for f in g.get("filters", [])) for g in groups)]
        rows.sort(key=lambda c: int(c["id"]))
        for s in reversed(body.get("sorts", [])):
            rows.sort(key=lambda c: value(c, s["propertyName"]) or 0, reverse=s.get("direction") == "DESCENDING")
        page = rows[after : after + limit]
        properties = body.get("properties", [])
        out = {"total": len(rows), "results": [self.contact_json(c, properties, False) for c in page]}
        if after + limit < len(rows):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return self.reply(200, out)

    def hubspot_companies(self, companies):
        body = self.json_body or {}
        inputs = body.get("inputs", [])
        if len(inputs) > BATCH_MAX_INPUTS:
            return self.reply(400, {"status": "error", "message": f"at most {BATCH_MAX_INPUTS} inputs", "category": "VALIDATION_ERROR"})
        properties = body.get("properties", [])
        results = []
        for i in inputs:
            c = companies.get(str(i["id"]))
            if c:
                props = {k: v for k, v in c.get("properties", {}).items() if k in properties}
                results.append({"id": c["id"], "properties": props, "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z", "archived": False})
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        return self.reply(200, {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now})

    def hubspot_associations(self, contacts):
        body = self.json_body or {}
        by_id = {c["id"]: c for c in contacts}
        results = []
        for i in body.get("inputs", []):
            c = by_id.get(str(i["id"]))
            if not c or not c.get("companies"):
                continue
            to = []
            for cid in c["companies"]:
                types = [{"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]
                if cid == c.get("primary"):
                    types.insert(0, {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"})
                to.append({"toObjectId": int(cid), "associationTypes": types})
            results.append({"from": {"id": c["id"]}, "to": to})
        return self.reply(200, {"status": "COMPLETE", "results": results, "startedAt": "x", "completedAt": "x"})


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", choices=["daktela", "hubspot"], required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, default=0)
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    # Ends when the test closes stdin (or kills it).
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
