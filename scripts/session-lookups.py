#!/usr/bin/env python3
"""Prints {"lookups": [...]}: the get_resource requests a replay session records, in order, as
the floor module's settings (tools/floor-policy makes exactly those host calls), plus
{"lists": [...]}, the list_resources_by_namespace requests, when the session has any. kwctl 1.35
replays them field by field, so these are the very requests the policy makes.

    scripts/session-lookups.py test_data/session-workload-found.yml
"""
import json
import sys

lookups, lists, current, key = [], [], None, None
for line in open(sys.argv[1], encoding="utf-8"):
    text = line.strip()
    if text in ("!KubernetesGetResource", "!KubernetesListResourceNamespace"):
        current = {}
        (lookups if text == "!KubernetesGetResource" else lists).append(current)
    elif current is not None and text.startswith("response:"):
        current = None
    elif current is not None and text.startswith("- "):
        current[key].append(text[2:])
    elif current is not None and ":" in text:
        key, value = (part.strip() for part in text.split(":", 1))
        current[key] = {"": [], "false": False, "true": True, "null": None}.get(value, value)
print(json.dumps({"lookups": lookups, **({"lists": lists} if lists else {})}))
