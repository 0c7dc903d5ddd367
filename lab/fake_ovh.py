"""A local fake of the OVH API's DNS zone calls, for offline tests of ACME DNS-01 (issue 14,
R-SCOPE-2). Standard library only: the lab copies this file to the ops host and runs it there
with Debian's python3, where certbot's OVH plugin reaches it under the real endpoint name
(eu.api.ovh.com resolved to it, its TLS certificate from the lab CA); unit tests run it in-process.

What it does like OVH (https://eu.api.ovh.com/1.0):
- `GET /auth/time` (unauthenticated) answers the server time;
- every other call must carry X-Ovh-Application, X-Ovh-Consumer, X-Ovh-Timestamp and
  X-Ovh-Signature = "$1$" + SHA1(AS + "+" + CK + "+" + METHOD + "+" + URL + "+" + BODY + "+" + TS),
  URL being the full URL the client signed (scheme, host, path and query). Unknown application
  key: 403; unknown consumer key (or one of another application): 403; bad signature: 400;
  timestamp more than MAX_SKEW seconds away: 400;
- the consumer key's access rules: `{"method": M, "path": P}` where P is the path after /1.0
  without the query, and a `*` in P matches any characters (slashes included). A call no rule
  allows gets 403 "This call has not been granted";
- the zone calls the plugin (lexicon's ovh provider) makes: list zones, zone status, list,
  read, create and delete records, refresh. Records are published (to the DNS server the ACME
  server asks) only at refresh, like OVH's own zones.

Publishing: each refresh replaces the TXT values of every changed name on a
pebble-challtestsrv management API (`--publish-url`, its /set-txt and /clear-txt), so pebble's
DNS resolution sees what the zone holds. `--fail-file PATH`: while that file exists every
record creation fails with 503 (the lab's "OVH DNS is down" drill).

Run: python3 fake_ovh.py --listen ADDR:PORT --state STATE.json [--tls-cert C --tls-key K]
     [--publish-url http://127.0.0.1:8055] [--fail-file PATH]
STATE.json: {"zones": ["villeparisis.fr"], "applications": {"AK": "AS"},
             "consumers": {"CK": {"application": "AK", "rules": [...]}}}
The state file holds secrets: it must be 0600 (refused otherwise). Nothing secret is logged.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import ssl
import stat
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/1.0"
MAX_SKEW = 300  # seconds


class ApiError(Exception):
    def __init__(self, status: int, message: str, error_class: str = "Client::Forbidden"):
        super().__init__(message)
        self.status, self.message, self.error_class = status, message, error_class


def signature(secret: str, consumer: str, method: str, url: str, body: str, ts: str) -> str:
    """OVH's request signature ("$1$" + hex SHA1 of the '+'-joined fields)."""
    raw = "+".join([secret, consumer, method.upper(), url, body, ts])
    return "$1$" + hashlib.sha1(raw.encode("utf-8")).hexdigest()  # noqa: S324 - OVH's scheme


def rule_matches(rule: Mapping[str, str], method: str, path: str) -> bool:
    """One access rule against a call (path after /1.0, no query). `*` matches anything."""
    if str(rule.get("method", "")).upper() != method.upper():
        return False
    pattern = "".join(".*" if part == "*" else re.escape(part)
                      for part in re.split(r"(\*)", str(rule.get("path", ""))))
    return re.fullmatch(pattern, path) is not None


def allowed(rules: Iterable[Mapping[str, str]], method: str, path: str) -> bool:
    return any(rule_matches(r, method, path) for r in rules)


class Zones:
    """The DNS zones' records; published to the resolver at refresh only."""

    def __init__(self, zones: Iterable[str], publish: Callable[[str, list[str]], None]):
        self.records: dict[str, dict[int, dict[str, Any]]] = {z: {} for z in zones}
        self.published: dict[str, list[str]] = {}  # fqdn -> TXT values the resolver serves
        self._publish = publish
        self._next = 1000
        self.lock = threading.Lock()

    def zone(self, name: str) -> dict[int, dict[str, Any]]:
        if name not in self.records:
            raise ApiError(404, "This service does not exist", "Client::NotFound")
        return self.records[name]

    def create(self, zone: str, body: Mapping[str, Any]) -> dict[str, Any]:
        for f in ("fieldType", "target"):
            if not isinstance(body.get(f), str) or not body.get(f):
                raise ApiError(400, f"Invalid body: {f} is required", "Client::BadRequest")
        with self.lock:
            self._next += 1
            rec = {"id": self._next, "zone": zone, "fieldType": body["fieldType"],
                   "subDomain": str(body.get("subDomain") or ""), "target": body["target"],
                   "ttl": int(body.get("ttl") or 0)}
            self.zone(zone)[rec["id"]] = rec
            return rec

    def refresh(self, zone: str) -> None:
        with self.lock:
            want: dict[str, list[str]] = {}
            for rec in self.zone(zone).values():
                if rec["fieldType"] == "TXT":
                    fqdn = f"{rec['subDomain']}.{zone}" if rec["subDomain"] else zone
                    want.setdefault(fqdn, []).append(rec["target"].strip('"'))
            names = {n for n in (*want, *self.published)
                     if n == zone or n.endswith("." + zone)}
            for name in sorted(names):
                values = sorted(want.get(name, []))
                if values != self.published.get(name, []):
                    self._publish(name, values)
                    self.published[name] = values
                    if not values:
                        del self.published[name]


class Api:
    """The request handling, apart from HTTP (unit tests call `handle` directly)."""

    def __init__(self, state: Mapping[str, Any], publish: Callable[[str, list[str]], None],
                 fail_file: str | None = None, clock: Callable[[], float] = time.time):
        self.applications: dict[str, str] = dict(state.get("applications", {}))
        self.consumers: dict[str, dict[str, Any]] = dict(state.get("consumers", {}))
        self.zones = Zones(state.get("zones", ()), publish)
        self.fail_file = fail_file
        self.clock = clock
        self.calls: list[tuple[str, str, int]] = []  # method, path, status: what the tests read

    def authenticate(self, method: str, url: str, body: str,
                     headers: Mapping[str, str]) -> dict[str, Any]:
        ak = headers.get("X-Ovh-Application", "")
        secret = self.applications.get(ak)
        if secret is None:
            raise ApiError(403, "Invalid application key", "Client::Forbidden::InvalidKey")
        ck = headers.get("X-Ovh-Consumer", "")
        consumer = self.consumers.get(ck)
        if consumer is None or consumer.get("application") != ak:
            raise ApiError(403, "This credential does not exist",
                           "Client::Forbidden::InvalidCredential")
        ts = headers.get("X-Ovh-Timestamp", "")
        if not ts.isdigit() or abs(int(ts) - self.clock()) > MAX_SKEW:
            raise ApiError(400, "Invalid timestamp", "Client::BadRequest::InvalidTimestamp")
        want = signature(secret, ck, method, url, body, ts)
        if not hmac.compare_digest(want, headers.get("X-Ovh-Signature", "")):
            raise ApiError(400, "Invalid signature", "Client::BadRequest::InvalidSignature")
        return consumer

    def handle(self, method: str, url: str, body: str,
               headers: Mapping[str, str]) -> tuple[int, Any]:
        parts = urlsplit(url)
        path = parts.path
        try:
            if not path.startswith(PREFIX + "/"):
                raise ApiError(404, "Unknown path", "Client::NotFound")
            path = path[len(PREFIX):]
            if method == "GET" and path == "/auth/time":
                result: tuple[int, Any] = (200, int(self.clock()))
            else:
                consumer = self.authenticate(method, url, body, headers)
                if not allowed(consumer.get("rules", ()), method, path):
                    raise ApiError(403, "This call has not been granted",
                                   "Client::Forbidden::NotGrantedCall")
                result = self.route(method, path, parse_qs(parts.query), body)
        except ApiError as exc:
            result = (exc.status, {"class": exc.error_class, "message": exc.message})
        self.calls.append((method, path, result[0]))
        return result

    def route(self, method: str, path: str, query: Mapping[str, list[str]],
              body: str) -> tuple[int, Any]:
        z = self.zones
        if path in ("/domain/zone", "/domain/zone/") and method == "GET":
            return 200, sorted(z.records)
        m = re.fullmatch(r"/domain/zone/([^/]+)(/.*)?", path)
        if not m:
            raise ApiError(404, "Unknown path", "Client::NotFound")
        zone, rest = m.group(1), m.group(2) or ""
        records = z.zone(zone)
        if rest == "/status" and method == "GET":
            return 200, {"isDeployed": True, "warnings": [], "errors": []}
        if rest == "/refresh" and method == "POST":
            z.refresh(zone)
            return 200, None
        if rest == "/record" and method == "GET":
            ftype = (query.get("fieldType") or [None])[0]
            sub = (query.get("subDomain") or [None])[0]
            return 200, sorted(i for i, r in records.items()
                               if (ftype is None or r["fieldType"] == ftype)
                               and (sub is None or r["subDomain"] == sub))
        if rest == "/record" and method == "POST":
            if self.fail_file and os.path.exists(self.fail_file):
                raise ApiError(503, "Service unavailable (lab drill)", "Server::Unavailable")
            try:
                data = json.loads(body or "{}")
            except ValueError as exc:
                raise ApiError(400, "Invalid JSON body", "Client::BadRequest") from exc
            return 200, z.create(zone, data if isinstance(data, dict) else {})
        m = re.fullmatch(r"/record/(\d+)", rest)
        if m:
            rid = int(m.group(1))
            if rid not in records:
                raise ApiError(404, f"The requested object (id = {rid}) does not exist",
                               "Client::NotFound")
            if method == "GET":
                return 200, records[rid]
            if method == "DELETE":
                with z.lock:
                    del records[rid]
                return 200, None
        raise ApiError(404, "Unknown path", "Client::NotFound")


def challtestsrv_publisher(base_url: str) -> Callable[[str, list[str]], None]:
    """Publish TXT values through pebble-challtestsrv's management API."""
    def post(endpoint: str, doc: Mapping[str, str]) -> None:
        req = urllib.request.Request(f"{base_url.rstrip('/')}/{endpoint}",
                                     data=json.dumps(doc).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local URL
            resp.read()

    def publish(name: str, values: list[str]) -> None:
        host = name.rstrip(".") + "."
        post("clear-txt", {"host": host})
        for v in values:
            post("set-txt", {"host": host, "value": v})
    return publish


def load_state(path: str) -> dict[str, Any]:
    st = os.stat(path)
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise SystemExit(f"fake_ovh: {path} holds secrets and must be 0600 "
                         f"(it is {stat.S_IMODE(st.st_mode):04o})")
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    if not isinstance(state.get("zones"), list) or not state["zones"]:
        raise SystemExit(f"fake_ovh: {path}: zones: a non-empty list of zone names is required")
    return state


def make_server(api: Api, listen: str, scheme: str = "http",
                context: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    host, _, port = listen.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            url = f"{scheme}://{self.headers.get('Host', listen)}{self.path}"
            status, doc = api.handle(self.command, url, body, self.headers)
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = _do

        def log_message(self, fmt: str, *args: Any) -> None:
            # Method, path and status only: never a header (they carry the keys).
            sys.stderr.write(f"fake_ovh: {self.command} {urlsplit(self.path).path} "
                             f"{args[1] if len(args) > 1 else ''}\n")

    server = ThreadingHTTPServer((host.strip("[]") or "127.0.0.1", int(port)), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", required=True, help="ADDR:PORT")
    p.add_argument("--state", required=True, help="JSON file, mode 0600")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--publish-url", help="pebble-challtestsrv management API")
    p.add_argument("--fail-file")
    a = p.parse_args(argv)
    state = load_state(a.state)
    publish = (challtestsrv_publisher(a.publish_url) if a.publish_url
               else lambda _name, _values: None)
    api = Api(state, publish, a.fail_file)
    context = None
    if a.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(a.tls_cert, a.tls_key)
    server = make_server(api, a.listen, "https" if context else "http", context)
    sys.stderr.write(f"fake_ovh: listening on {a.listen}\n")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
