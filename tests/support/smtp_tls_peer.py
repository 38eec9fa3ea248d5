"""An SMTP server offering STARTTLS with a self-signed certificate.
Recipients whose local part starts with "reject" get 550, with "defer" 451.
Usage: smtp_tls_peer.py PORT CERT KEY OUTDIR [broken|small|refuse|stall]
With "broken" it offers STARTTLS but only TLS 1.1, so no handshake succeeds;
with "small" it announces SIZE 2000; with "refuse" it answers STARTTLS with
454; with "stall" it answers STARTTLS with 220 and then says nothing.
Writes OUTDIR/<n>.json per message: mail_from, rcpt_tos, tls (bool), peer
(the client's address and port: one per connection), data."""
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class RefusingSMTP(SMTP):
    async def smtp_STARTTLS(self, arg):
        await self.push("454 4.7.0 TLS not available due to temporary reason")


class StallingSMTP(SMTP):
    async def smtp_STARTTLS(self, arg):
        await self.push("220 2.0.0 Ready to start TLS")
        await asyncio.sleep(3600)


class PeerController(Controller):
    def __init__(self, smtp_class, *args, **kwargs):
        self.smtp_class = smtp_class
        super().__init__(*args, **kwargs)

    def factory(self):
        return self.smtp_class(self.handler, **self.SMTP_kwargs)


class Recorder:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 No such user here"
        if local.startswith("defer"):
            return "451 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "peer": list(session.peer),
            "data": envelope.original_content.decode("utf-8", "replace"),
        }
        path = os.path.join(self.outdir, f"{self.count}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 OK"


def main():
    port, cert, key, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mode = sys.argv[5] if len(sys.argv) > 5 else ""
    if mode == "broken":
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    smtp_class = {"refuse": RefusingSMTP, "stall": StallingSMTP}.get(mode, SMTP)
    controller = PeerController(
        smtp_class,
        Recorder(outdir),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=False,
        data_size_limit=2000 if mode == "small" else 33554432,
    )
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
