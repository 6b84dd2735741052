#!/usr/bin/env python3
"""A stand-in Kubernetes API server for tests: just what policy-server asks of one.

    fake_kube_api.py --state STATE.json --log REQUESTS.jsonl --port-file PORT [--port N]

Listens on 127.0.0.1 (port N, or a free one), plain HTTP, and writes the port it got to PORT
once it accepts connections. Every request is appended to REQUESTS.jsonl as one JSON line:
{"t": arrival time (epoch seconds), "method", "path", "query", "body" (parsed JSON or null),
"status": the status it answered}. STATE.json is read again on every request, so a test changes
the cluster by rewriting it (write a temporary file, then rename it over STATE.json):

    {
      "objects":   {"/api/v1/namespaces/NS/secrets/NAME": {...the object...}, ...},
      "forbidden": {"/api/v1/namespaces/NS/secrets/NAME": "optional text after the RBAC sentence"},
      "faults":    {"PATH or *": {"status": 500, "message": "...", "reason": "InternalError",
                                  "raw": "body sent as is instead of a Status",
                                  "delay": seconds before answering, "close": true}},
      "accessReviews": [{"user": "...", "namespace": "...", "name": "...",
                         "status": {"allowed": false, "reason": "..."}}],
      "accessReviewDefault": {"allowed": true, "reason": "..."},
      "delays":    {"PATH": seconds before answering it as usual},
      "delay": seconds before every answer
    }

Answers: discovery for v1, dittofs.dittofs.com/v1alpha1 and authorization.k8s.io/v1; GET of an
object in "objects"; 404 as a Kubernetes Status (reason NotFound) for any other object; 403
(reason Forbidden, the API server's sentence) for a path in "forbidden"; a fault for a path in
"faults" ("*" matches every path), checked before anything else; SubjectAccessReviews
(POST .../subjectaccessreviews) answered by the first matching "accessReviews" entry, else
"accessReviewDefault" (allowed when absent). Lists, watches and anything else: 405 Status.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

DISCOVERY = {
    "/version": {"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": group, "versions": [{"groupVersion": f"{group}/{version}", "version": version}],
         "preferredVersion": {"groupVersion": f"{group}/{version}", "version": version}}
        for group, version in [("dittofs.dittofs.com", "v1alpha1"), ("authorization.k8s.io", "v1")]]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
    ]},
    "/apis/dittofs.dittofs.com/v1alpha1": {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "dittofs.dittofs.com/v1alpha1",
        "resources": [
            {"name": "dittoservers", "singularName": "dittoserver", "namespaced": True, "kind": "DittoServer",
             "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]},
            {"name": "dittoservers/status", "singularName": "", "namespaced": True, "kind": "DittoServer",
             "verbs": ["get", "patch", "update"]},
        ]},
    "/apis/authorization.k8s.io/v1": {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "authorization.k8s.io/v1",
        "resources": [{"name": "subjectaccessreviews", "singularName": "subjectaccessreview",
                       "namespaced": False, "kind": "SubjectAccessReview", "verbs": ["create"]}]},
}

OBJECT = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)/(?P<name>[^/]+)$")
ACCESS_REVIEW = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
POLICY_SERVER_USER = "system:serviceaccount:kubewarden:dittofs-s3-policy-server"


def status(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return code, body


class Api:
    def __init__(self, state_path, log_path):
        self.state_path = state_path
        self.log = open(log_path, "a", encoding="utf-8")
        self.lock = threading.Lock()

    def state(self):
        try:
            with open(self.state_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def record(self, entry):
        with self.lock:
            self.log.write(json.dumps(entry, sort_keys=True) + "\n")
            self.log.flush()

    def answer(self, method, path, body, state):
        """(status, JSON body) or (status, raw text) for one request."""
        faults = state.get("faults", {})
        fault = faults.get(path) or faults.get("*")
        if fault:
            if "raw" in fault:
                return fault.get("status", 200), fault["raw"]
            return status(fault.get("status", 500), fault.get("reason", "InternalError"),
                          fault.get("message", "Internal error occurred: fake fault"))
        if method == "GET" and path in DISCOVERY:
            return 200, DISCOVERY[path]
        if method == "POST" and path == ACCESS_REVIEW:
            return 201, self.access_review(body, state)
        match = OBJECT.match(path)
        if method == "GET" and match:
            plural, name, ns = match["plural"], match["name"], match["ns"]
            group = match["group"] or ""
            details = {"name": name, "kind": plural}
            if group:
                details["group"] = group
            forbidden = state.get("forbidden", {})
            if path in forbidden:
                resource = f"{plural}.{group}" if group else plural
                extra = forbidden[path]
                return status(403, "Forbidden",
                              f'{resource} "{name}" is forbidden: User "{POLICY_SERVER_USER}" cannot get '
                              f'resource "{plural}" in API group "{group}" in the namespace "{ns}"'
                              + (f": {extra}" if extra else ""), details)
            objects = state.get("objects", {})
            if path in objects:
                return 200, objects[path]
            resource = f"{plural}.{group}" if group else plural
            return status(404, "NotFound", f'{resource} "{name}" not found', details)
        return status(405, "MethodNotAllowed", f"the fake API does not serve {method} {path}")

    def access_review(self, body, state):
        spec = (body or {}).get("spec") or {}
        attributes = spec.get("resourceAttributes") or {}
        answer = state.get("accessReviewDefault", {"allowed": True, "reason": "fake: allowed by default"})
        for rule in state.get("accessReviews", []):
            if all(rule.get(k) is None or rule[k] == v for k, v in (
                    ("user", spec.get("user")), ("namespace", attributes.get("namespace")),
                    ("name", attributes.get("name")))):
                answer = rule["status"]
                break
        review = dict(body or {})
        review.setdefault("apiVersion", "authorization.k8s.io/v1")
        review.setdefault("kind", "SubjectAccessReview")
        review["metadata"] = {"creationTimestamp": None}
        review["status"] = answer
        return review


def handler(api):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without TCP_NODELAY the second one waits
        # for the client's delayed ACK (40 ms on Linux) on every answer.
        disable_nagle_algorithm = True

        def log_message(self, *args):  # the request log is ours
            pass

        def handle_any(self, method):
            arrived = time.time()
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            state = api.state()
            code, answer = api.answer(method, url.path, body, state)
            faults = state.get("faults", {})
            fault = faults.get(url.path) or faults.get("*") or {}
            api.record({"t": arrived, "method": method, "path": url.path, "query": url.query,
                        "body": body, "status": code})
            delay = float(fault.get("delay", state.get("delays", {}).get(url.path, state.get("delay", 0))))
            if delay:
                time.sleep(delay)
            if fault.get("close"):
                self.close_connection = True
                self.connection.close()
                return
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        def do_PUT(self):
            self.handle_any("PUT")

        def do_PATCH(self):
            self.handle_any("PATCH")

        def do_DELETE(self):
            self.handle_any("DELETE")

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    api = Api(args.state, args.log)
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(api))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{server.server_address[1]}\n")
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
