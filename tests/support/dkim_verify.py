"""Verifies a DKIM signature with dkimpy, an implementation independent of
Tern's. Usage: dkim_verify.py MESSAGE_FILE DNS_TXT_VALUE
The TXT value is served for whatever selector the signature names."""
import sys

import dkim


def main() -> int:
    message = open(sys.argv[1], "rb").read()
    record = sys.argv[2].encode()

    def dnsfunc(name, timeout=5):
        return record

    ok = dkim.verify(message, dnsfunc=dnsfunc)
    print("verified" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
