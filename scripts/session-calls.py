#!/usr/bin/env python3
"""Prints {"calls": [{"operation": ..., "payload": ...}, ...]}: every host call a replay session
records, in order, as the floor module's settings (tools/floor-policy makes exactly those calls,
so a replay of the same session answers the floor as it answers the policy). Reads the YAML
kwctl 1.35 writes (scalars, nested mappings, lists of scalars) without a YAML library.

    scripts/session-calls.py test_data/session-secret-found.yml
"""
import json
import sys

OPERATIONS = {
    "!KubernetesGetResource": "get_resource",
    "!KubernetesListResourceNamespace": "list_resources_by_namespace",
    "!KubernetesCanI": "can_i",
}


def scalar(text):
    if text in ("''", '""'):
        return ""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return {"null": None, "~": None, "true": True, "false": False}.get(text, text)


def mapping(lines, start, indent):
    """The mapping whose keys sit at `indent` from lines[start]; returns it and the next line."""
    result, i = {}, start
    while i < len(lines):
        line = lines[i]
        depth = len(line) - len(line.lstrip(" "))
        if depth < indent:
            break
        if depth > indent or line.lstrip().startswith("- ") or ":" not in line:
            sys.exit(f"unexpected session line: {line!r}")
        key, value = (part.strip() for part in line.split(":", 1))
        i += 1
        if value:
            result[key] = scalar(value)
            continue
        nested = lines[i] if i < len(lines) else ""
        nested_depth = len(nested) - len(nested.lstrip(" "))
        if nested.lstrip().startswith("- ") and nested_depth >= indent:
            items = []
            while i < len(lines) and lines[i].lstrip().startswith("- ") and \
                    len(lines[i]) - len(lines[i].lstrip(" ")) == nested_depth:
                items.append(scalar(lines[i].strip()[2:].strip()))
                i += 1
            result[key] = items
        elif nested_depth > indent:
            result[key], i = mapping(lines, i, nested_depth)
        else:
            result[key] = None
    return result, i


def requests(path):
    """Each recorded request: its tag and the text of its `request: |` block, dedented."""
    block, base = None, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if block is not None:
            depth = len(line) - len(line.lstrip(" "))
            if line.strip() and (base is None or depth >= base):
                base = depth if base is None else base
                block.append(line[base:])
                continue
            yield block
            block, base = None, None
        if line.strip() == "request: |":
            block = []
    if block is not None:
        yield block


calls = []
for block in requests(sys.argv[1]):
    tag, body = block[0].strip(), [line for line in block[1:] if line.strip()]
    if tag not in OPERATIONS:
        sys.exit(f"unknown recorded request {tag}")
    fields, _ = mapping(body, 0, 0)
    if tag == "!KubernetesCanI":
        # The SDK's CanIRequest; sessions record its review as `request`.
        fields = {"subject_access_review": fields["request"], "disable_cache": fields["disable_cache"]}
    calls.append({"operation": OPERATIONS[tag], "payload": fields})
print(json.dumps({"calls": calls}))
