"""A real SMTP server for the tests (aiosmtpd 1.4.6) that captures every message.

Usage: smtp_capture.py --dir DIR [--tls-cert F --tls-key F [--implicit-tls]]
                       [--auth-user U --auth-pass P]

Listens on a free port of 127.0.0.1 and prints `READY <port>` once it accepts
connections. Each accepted message is written to DIR/NNNNNN.eml (the bytes as
received) with one JSON line in DIR/envelopes.jsonl (file, mail_from,
rcpt_tos). Each new connection appends a line to DIR/connections.log.

Reply scripting: DIR/replies.txt, one SMTP reply per line (`451 4.3.0 try
later`, `550 5.1.1 no such user`); each DATA consumes the first line, and an
empty or missing file means `250 OK`. A refused message is not captured.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Capture:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    def next_reply(self):
        path = os.path.join(self.folder, "replies.txt")
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None
        if not lines:
            return None
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines[1:]))
        os.replace(path + ".tmp", path)
        return lines[0].strip() or None

    async def handle_DATA(self, server, session, envelope):
        reply = self.next_reply()
        if reply is not None and not reply.startswith("250"):
            return reply
        self.count += 1
        name = "%06d.eml" % self.count
        with open(os.path.join(self.folder, name), "wb") as f:
            f.write(envelope.original_content)
        with open(os.path.join(self.folder, "envelopes.jsonl"), "a", encoding="utf-8") as f:
            record = {"file": name, "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}
            f.write(json.dumps(record) + "\n")
        return reply or "250 OK"


class CountingSMTP(SMTP):
    def connection_made(self, transport):
        folder = self.event_handler.folder
        with open(os.path.join(folder, "connections.log"), "a", encoding="utf-8") as f:
            f.write("connection\n")
        super().connection_made(transport)


class CountingController(Controller):
    def factory(self):
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-pass")
    args = parser.parse_args()

    kwargs = {}
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    if context is not None and not args.implicit_tls:
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True
    if args.auth_user:
        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == args.auth_user
                and auth_data.password.decode() == args.auth_pass
            )
            return AuthResult(success=ok)

        kwargs["authenticator"] = authenticate
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = context is not None

    # Port 0: the OS picks a free port; aiosmtpd's readiness probe needs a real
    # one, so bind a socket first to learn it.
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    controller = CountingController(
        Capture(args.dir),
        hostname="127.0.0.1",
        port=port,
        ssl_context=context if args.implicit_tls else None,
        server_hostname="127.0.0.1",
        **kwargs,
    )
    controller.start()
    print("READY %d" % port, flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin or kills us
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
