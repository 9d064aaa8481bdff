"""A real SMTP server for the tests (aiosmtpd 1.4.6) that captures every message.

Usage: smtp_capture.py --dir DIR [--port P] [--tls-cert F --tls-key F [--implicit-tls]]
                       [--auth-user U --auth-pass P] [--delay-ms MS]

Listens on 127.0.0.1 (on --port, else on a free port) and prints `READY <port>`
once it accepts connections. With a certificate it requires STARTTLS, or with
--implicit-tls speaks TLS from the first byte (smtps). With --auth-user it
requires AUTH (PLAIN or LOGIN; after TLS when there is TLS) and answers wrong
credentials with `535 5.7.8`. --delay-ms waits that long in each DATA before
answering (a slow server, for tests that stop a client mid-batch). Each accepted message is written to DIR/NNNNNN.eml (the bytes as
received) with one JSON line in DIR/envelopes.jsonl (file, mail_from,
rcpt_tos). Each new connection appends a line to DIR/connections.log (the
readiness probe's own connection is not counted).

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
    def __init__(self, folder, delay_ms=0):
        self.folder = folder
        self.count = 0
        self.delay = delay_ms / 1000.0

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
        if self.delay:
            await asyncio.sleep(self.delay)
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
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=int, default=0)
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
            # handled=False: aiosmtpd answers a failure with 535 itself (with
            # the default, handled=True, it answers nothing and the client hangs).
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticate
        kwargs["auth_required"] = True
        # aiosmtpd only counts STARTTLS as TLS; with implicit TLS the whole
        # connection is encrypted already.
        kwargs["auth_require_tls"] = context is not None and not args.implicit_tls

    # Port 0: the OS picks a free port; aiosmtpd's readiness probe needs a real
    # one, so bind a socket first to learn it.
    import socket

    port = args.port
    if not port:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()

    controller = CountingController(
        Capture(args.dir, args.delay_ms),
        hostname="127.0.0.1",
        port=port,
        ssl_context=context if args.implicit_tls else None,
        server_hostname="127.0.0.1",
        **kwargs,
    )
    controller.start()
    # start() connected once to check the server answers: not a client's.
    try:
        os.remove(os.path.join(args.dir, "connections.log"))
    except FileNotFoundError:
        pass
    print("READY %d" % port, flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin or kills us
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
