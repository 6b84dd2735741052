#!/usr/bin/env python3
"""Prints the floor module's settings for answering with the policy's own mutated object:
the LOOKUPS settings plus {KEY: the ValidationResponse as a JSON string}, where the mutated
object is the REQUEST's object with the policy's patch (from RESPONSE, a kwctl AdmissionResponse
or a policy-server AdmissionReview) applied. KEY "response" makes the floor answer with it;
any other key only makes the floor carry the same settings (tools/floor-policy).

    scripts/mutating-floor-settings.py REQUEST RESPONSE LOOKUPS KEY
"""
import base64
import json
import sys

request, response, lookups, key = sys.argv[1:5]
obj = json.load(open(request, encoding="utf-8"))["object"]
answer = json.load(open(response, encoding="utf-8"))
answer = answer.get("response", answer)
for op in json.loads(base64.b64decode(answer["patch"])):
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    target = obj
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        index = len(target) if last == "-" else int(last)
        if op["op"] == "add":
            target.insert(index, op["value"])
        elif op["op"] == "replace":
            target[index] = op["value"]
        else:
            del target[index]
    elif op["op"] == "remove":
        del target[last]
    else:
        target[last] = op["value"]
settings = json.load(open(lookups, encoding="utf-8"))
settings[key] = json.dumps({"accepted": True, "mutated_object": obj})
print(json.dumps(settings))
