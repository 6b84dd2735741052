#!/usr/bin/env python3
"""Prints the single-line annotations a module's embedded Kubewarden metadata holds (the
`io.kubewarden.metadata` custom section that kwctl or policy-runner annotate wrote), one
`key<TAB>value` per line: what a push copies into the OCI manifest, whichever tool annotated it.

    scripts/embedded-annotations.py annotated-policy.wasm
"""
import json
import sys

SECTION = b"io.kubewarden.metadata"


def leb128(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


data = open(sys.argv[1], "rb").read()
at = 8  # magic and version
while at < len(data):
    section_id = data[at]
    size, at = leb128(data, at + 1)
    end = at + size
    if section_id == 0:
        name_length, name_at = leb128(data, at)
        if data[name_at:name_at + name_length] == SECTION:
            metadata = json.loads(data[name_at + name_length:end])
            for key, value in sorted((metadata.get("annotations") or {}).items()):
                if "\n" not in value:
                    print(f"{key}\t{value}")
            sys.exit(0)
    at = end
sys.exit(f"{sys.argv[1]}: no {SECTION.decode()} section")
