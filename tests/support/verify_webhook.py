"""Verifies a webhook delivery with the Standard Webhooks reference library
(an implementation independent of Tern's). Usage: verify_webhook.py SECRET
< {"body": "...", "headers": {"webhook-id": ..., ...}}
Exits 0 if the signature verifies, 1 (printing why) if it does not."""
import json
import sys

from standardwebhooks.webhooks import Webhook


def main():
    request = json.load(sys.stdin)
    try:
        Webhook(sys.argv[1]).verify(request["body"], request["headers"])
    except Exception as err:  # the library raises its own verification errors
        print(f"{type(err).__name__}: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
