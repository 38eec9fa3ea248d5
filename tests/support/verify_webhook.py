"""Verifies a webhook delivery with implementations independent of Tern's.
Usage: verify_webhook.py KEY < {"body": "...", "headers": {"webhook-id": ..., ...}}
KEY `whsec_...`: the `v1` (HMAC) scheme, checked by the Standard Webhooks
reference library. KEY `whpk_...`: the `v1a` (Ed25519) scheme, which that
library does not implement: checked here with PyNaCl (libsodium), by the
specification's rules (signed content `id.timestamp.body`, timestamp
within 5 minutes, any of the space-separated signatures).
Exits 0 if the signature verifies, 1 (printing why) if it does not."""
import base64
import json
import sys
import time

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from standardwebhooks.webhooks import Webhook

TOLERANCE = 5 * 60


def verify_v1a(public_key, body, headers):
    key = VerifyKey(base64.b64decode(public_key.removeprefix("whpk_")))
    timestamp = int(headers["webhook-timestamp"])
    if abs(time.time() - timestamp) > TOLERANCE:
        raise ValueError("timestamp too old or too new")
    content = f'{headers["webhook-id"]}.{timestamp}.{body}'.encode()
    for signature in headers["webhook-signature"].split(" "):
        version, _, value = signature.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(content, base64.b64decode(value))
            return
        except BadSignatureError:
            continue
    raise ValueError("no v1a signature matches")


def main():
    request = json.load(sys.stdin)
    key = sys.argv[1]
    try:
        if key.startswith("whpk_"):
            verify_v1a(key, request["body"], request["headers"])
        else:
            Webhook(key).verify(request["body"], request["headers"])
    except Exception as err:  # both raise their own verification errors
        print(f"{type(err).__name__}: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
