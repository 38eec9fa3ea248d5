"""Validates bodies against the OpenAPI document's component schemas
(JSON Schema 2020-12, as OpenAPI 3.1 uses), so a test can show that the
schema accepts what the server accepts and refuses what it refuses.
Usage: schema_check.py OPENAPI_JSON < cases.json
cases.json: [{"schema": "SendMessage", "body": {...}, "valid": true}, ...]
Prints one line per case whose outcome differs, and exits 1 if any does."""
import json
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def main():
    doc = json.load(open(sys.argv[1]))
    cases = json.load(sys.stdin)
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:tern-openapi", resource)
    wrong = 0
    for case in cases:
        schema = {"$ref": "urn:tern-openapi#/components/schemas/" + case["schema"]}
        validator = Draft202012Validator(schema, registry=registry)
        errors = [e.message for e in validator.iter_errors(case["body"])]
        if (not errors) != case["valid"]:
            wrong += 1
            print(f'{case["schema"]} {json.dumps(case["body"])}: expected valid={case["valid"]}, errors={errors}')
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
