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
      "delay": seconds before every answer,
      "resourceVersion": "N", the resourceVersion of every list (else derived, see below),
      "watchBookmarkSeconds": seconds between a watch's BOOKMARK events (see below)
    }

Answers: discovery for v1, dittofs.dittofs.com/v1alpha1 and authorization.k8s.io/v1; GET of an
object in "objects"; 404 as a Kubernetes Status (reason NotFound) for any other object; 403
(reason Forbidden, the API server's sentence) for a path in "forbidden"; a fault for a path in
"faults" ("*" matches every path), checked before anything else; SubjectAccessReviews
(POST .../subjectaccessreviews) answered by the first matching "accessReviews" entry, else
"accessReviewDefault" (allowed when absent).

Namespaced collections (GET /api/v1/namespaces/NS/PLURAL, GET /apis/G/V/namespaces/NS/PLURAL,
for a plural the discovery above names) are answered from the same "objects": the items are the
objects whose path is the collection path plus one segment, in path order, filtered by a
labelSelector (k=v, k==v, k!=v, k, !k, comma-separated) and a fieldSelector (metadata.name and
metadata.namespace with = == !=) when the query has them (another selector: 400 BadRequest).
The answer is what a real API server sends: a "<Kind>List" with apiVersion and
metadata.resourceVersion (the state's "resourceVersion", else a number derived from the
collection's objects, so it changes when they do); every item gets metadata.resourceVersion
when it has none (the list's), and, for a custom resource (apis/...), apiVersion and kind when it
has none; built-in (api/v1) items lose theirs, as a real API server leaves them out of those. "limit"/"continue" are ignored: everything comes in one page. A path in "forbidden" answers
403 with the RBAC sentence for verb "list" (or "watch"); "faults" and "delays" apply to the
collection path as to any other. A CRD that is not installed shows first in discovery: a fault
{"status": 404, "reason": "NotFound", "message": "the server could not find the requested resource"}
on /apis/G/V is what policy-evaluator then reports (a 403, 404 or 500 of the LIST itself makes its
reflector retry forever, and the host call never returns).

A WATCH of such a collection (query watch=true or watch=1) answers 200 with a chunked
application/json stream of the collection's changes: the watch starts from the items of the list
whose resourceVersion it names (the lists answered are remembered by resourceVersion; an unknown
or absent one: the items at the watch's arrival), then reads STATE.json every 0.1 s and sends, in
path order, ADDED for an object that appeared under the collection (or came into its selectors),
MODIFIED for one whose stored JSON changed, DELETED (the last version sent) for one that went
away (or left its selectors). Each event's object is rendered as a list item, with apiVersion and
kind (built-in kinds too, as a real API server sends them in watch events) and with
metadata.resourceVersion set to the event's own, which starts above the watch's resourceVersion
and increases by one per event. With allowWatchBookmarks=true it also sends a BOOKMARK event
carrying the last resourceVersion sent every "watchBookmarkSeconds" (state, default 60; 0: none).
Events are not logged. The stream stays open until the query's timeoutSeconds (default 1800) pass
or the server is stopped (SIGTERM or SIGINT end every open watch cleanly), and ends with the last
chunk; other requests are served meanwhile (a thread per connection). The request is logged when
it arrives, like every other. Anything else (a cluster-scoped list, other methods): 405 Status.
"""

import argparse
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

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
COLLECTION = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)$")
ACCESS_REVIEW = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
POLICY_SERVER_USER = "system:serviceaccount:kubewarden:dittofs-s3-policy-server"


def status(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return code, body


def kind_of(group, version, plural):
    """The kind discovery names for a namespaced plural, or None."""
    resources = DISCOVERY.get(f"/apis/{group}/{version}" if group else "/api/v1", {}).get("resources", [])
    for resource in resources:
        if resource["name"] == plural and resource["namespaced"]:
            return resource["kind"]
    return None


class Watch:
    """What handle_any streams for a watch of the collection `path`: its changes from `start`
    ({path: object} as last listed), then bookmarks every `bookmark` seconds (0: none)."""

    def __init__(self, resource_version, api_version, kind, timeout, bookmark, path, start, select):
        self.resource_version = resource_version
        self.api_version = api_version
        self.kind = kind
        self.timeout = timeout
        self.bookmark = bookmark
        self.path = path
        self.known = start
        self.select = select

    def changes(self, state):
        """[(type, object as stored)] since the last call, in path order."""
        now = self.select(members(self.path, state))
        events = []
        for path in sorted(set(self.known) | set(now)):
            before, after = self.known.get(path), now.get(path)
            if before is None:
                events.append(("ADDED", after))
            elif after is None:
                events.append(("DELETED", before))
            elif before != after:
                events.append(("MODIFIED", after))
        self.known = now
        return events


def members(path, state):
    """{path: object} of the objects one segment below the collection `path`."""
    prefix = path + "/"
    return {p: o for p, o in state.get("objects", {}).items()
            if p.startswith(prefix) and "/" not in p[len(prefix):]}


def item(obj, api_version, kind, typed):
    """An object as a list item (typed: with apiVersion and kind, else without them)."""
    rendered = json.loads(json.dumps(obj))
    api_version, kind = rendered.pop("apiVersion", api_version), rendered.pop("kind", kind)
    if typed:
        rendered = {"apiVersion": api_version, "kind": kind, **rendered}
    rendered.setdefault("metadata", {})
    return rendered


def selector_terms(text, field):
    """[(key, op, value)] of a selector; ValueError for what this server does not understand."""
    terms = []
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        found = re.fullmatch(r"([^=!\s]+)\s*(==|!=|=)\s*([^=!\s]*)", term)
        if found:
            terms.append((found[1], "!=" if found[2] == "!=" else "=", found[3]))
        elif not field and re.fullmatch(r"!?[A-Za-z0-9./_-]+", term):
            terms.append((term.lstrip("!"), "absent" if term.startswith("!") else "exists", None))
        else:
            raise ValueError(term)
        if field and terms[-1][0] not in ("metadata.name", "metadata.namespace"):
            raise ValueError(term)
    return terms


def selected(obj, labels, fields):
    metadata = obj.get("metadata") or {}
    values = metadata.get("labels") or {}
    for key, op, value in labels:
        if ((op == "=" and values.get(key) != value) or (op == "!=" and values.get(key) == value)
                or (op == "exists" and key not in values) or (op == "absent" and key in values)):
            return False
    for key, op, value in fields:
        actual = metadata.get(key.split(".", 1)[1], "")
        if (op == "=") != (actual == value):
            return False
    return True


class Api:
    def __init__(self, state_path, log_path):
        self.state_path = state_path
        self.log = open(log_path, "a", encoding="utf-8")
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        # (collection path, resourceVersion) -> {path: object} of each list answered, where a
        # watch from that resourceVersion starts.
        self.listed = {}
        # ((inode, mtime, size) of the state file, its parsed contents)
        self.cached = None

    def state(self):
        """The state file's contents, parsed again only when the file changed (a test replaces
        it by renaming another over it: a new inode; an edit in place changes its mtime)."""
        try:
            stat = os.stat(self.state_path)
        except FileNotFoundError:
            return {}
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self.lock:
            if self.cached is not None and self.cached[0] == key:
                return self.cached[1]
        try:
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
        except FileNotFoundError:
            return {}
        with self.lock:
            self.cached = (key, state)
        return state

    def record(self, entry):
        with self.lock:
            self.log.write(json.dumps(entry, sort_keys=True) + "\n")
            self.log.flush()

    def answer(self, method, path, body, state, query=""):
        """(status, JSON body), (status, raw text) or (200, Watch) for one request."""
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
        match = COLLECTION.match(path)
        if method == "GET" and match:
            return self.collection(path, match, query, state)
        return status(405, "MethodNotAllowed", f"the fake API does not serve {method} {path}")

    def collection(self, path, match, query, state):
        """A list of a namespaced collection, or a Watch to stream."""
        params = {key: values[-1] for key, values in parse_qs(query or "", keep_blank_values=True).items()}
        group, version, ns, plural = match["group"] or "", match["version"] or "v1", match["ns"], match["plural"]
        kind = kind_of(group, version, plural)
        if kind is None:
            return status(404, "NotFound", "the server could not find the requested resource",
                          {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})
        api_version = f"{group}/{version}" if group else "v1"
        watch = params.get("watch") in ("true", "1")
        resource = f"{plural}.{group}" if group else plural
        if path in state.get("forbidden", {}):
            extra = state["forbidden"][path]
            verb = "watch" if watch else "list"
            return status(403, "Forbidden",
                          f'{resource} is forbidden: User "{POLICY_SERVER_USER}" cannot {verb} resource '
                          f'"{plural}" in API group "{group}" in the namespace "{ns}"'
                          + (f": {extra}" if extra else ""), {"group": group, "kind": plural} if group
                          else {"kind": plural})
        try:
            labels = selector_terms(params.get("labelSelector"), field=False)
            fields = selector_terms(params.get("fieldSelector"), field=True)
        except ValueError as bad:
            return status(400, "BadRequest", f"unable to parse requirement: the fake API does not "
                          f"understand the selector term {str(bad)!r}")
        listed = members(path, state)
        resource_version = str(state.get("resourceVersion") or int.from_bytes(hashlib.sha256(
            json.dumps(sorted(listed.items()), sort_keys=True).encode()).digest()[:3], "big") + 1000)

        def select(objects):
            return {p: o for p, o in objects.items() if selected(o, labels, fields)}

        if watch:
            start = self.listed.get((path, params.get("resourceVersion")), listed)
            return 200, Watch(params.get("resourceVersion") or resource_version, api_version, kind,
                              float(params.get("timeoutSeconds") or 1800),
                              float(state.get("watchBookmarkSeconds", 60))
                              if params.get("allowWatchBookmarks") == "true" else 0,
                              path, select(start), select)
        with self.lock:
            self.listed[(path, resource_version)] = listed
        items = []
        for _, obj in sorted(select(listed).items()):
            rendered = item(obj, api_version, kind, typed=bool(group))
            rendered["metadata"].setdefault("resourceVersion", resource_version)
            items.append(rendered)
        return 200, {"kind": f"{kind}List", "apiVersion": api_version,
                     "metadata": {"resourceVersion": resource_version}, "items": items}

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
            code, answer = api.answer(method, url.path, body, state, url.query)
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
            if isinstance(answer, Watch):
                self.stream(answer)
                return
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def stream(self, watch):
            """A watch: chunked events of the collection's changes (and bookmarks) until the
            timeout or the server stops."""
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            deadline = time.monotonic() + watch.timeout
            next_bookmark = time.monotonic() + watch.bookmark if watch.bookmark else None
            try:
                version = int(watch.resource_version)
            except ValueError:
                version = 0

            def send(event_type, obj):
                line = json.dumps({"type": event_type, "object": obj}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()

            try:
                while not api.stopping.is_set():
                    now = time.monotonic()
                    if now >= deadline:
                        break
                    try:
                        changes = watch.changes(api.state())
                    except ValueError:  # a state file caught half-written: read it next time
                        changes = []
                    for event_type, obj in changes:
                        version += 1
                        rendered = item(obj, watch.api_version, watch.kind, typed=True)
                        rendered["metadata"]["resourceVersion"] = str(version)
                        send(event_type, rendered)
                    if next_bookmark is not None and now >= next_bookmark:
                        send("BOOKMARK", {"apiVersion": watch.api_version, "kind": watch.kind,
                                          "metadata": {"resourceVersion": str(version or watch.resource_version)}})
                        next_bookmark = now + watch.bookmark
                    wake = min(deadline, next_bookmark or deadline)
                    api.stopping.wait(max(0.0, min(wake - now, 0.1)))
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:  # the client went away
                self.close_connection = True
            if api.stopping.is_set():
                self.close_connection = True

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
    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    api.stopping.set()  # open watches end their streams
    time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
