"""The incident record on the ops host (R-INC-4): Alertmanager's webhook receiver, and the
append code every other record goes through. Standard library only (Debian's python3).

    python3 receiver.py serve  [--listen 127.0.0.1:9099] [--log PATH]   (systemd service)
    python3 receiver.py append [--log PATH] < one JSON record          (tasks, over SSH)
    python3 receiver.py show   [--log PATH]                            (`fab incidents`)

* `serve` listens on 127.0.0.1 only (Alertmanager runs on the same host) and accepts POST
  /alertmanager with Alertmanager's webhook JSON (version 4). Every alert of a notification,
  firing or resolved, becomes one JSON line: what (alertname), when (received; started;
  resolved when), which site/host/tier, severity, status, summary and runbook.
* `append` takes one record of a restore, a failed release or a failed update from the
  admin's tasks (tasks/incident_record.py runs it over the admin's SSH access: a web host
  never writes here, so a compromised one cannot write or rewrite the record).
* `show` prints every line, the rotated files (oldest first, compressed ones too) then the
  live one.

No personal data (R-GDPR): labels and annotations pass an allow-list; a value holding an
e-mail address is dropped (labels) or redacted (free text); the group key, the generator URL
and every other field of the payload are never written. Each line is written by one
`write()` under an exclusive `flock`, with O_APPEND, then fsync'd: lines never interleave
and a reader never sees half a line.
"""
from __future__ import annotations

import argparse
import fcntl
import gzip
import json
import os
import re
import socket
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

SCHEMA = 1
DEFAULT_LOG = "/var/log/hosting/incidents/incidents.jsonl"
DEFAULT_LISTEN = "127.0.0.1:9099"
PATH = "/alertmanager"
MAX_BODY = 1024 * 1024  # a notification of many alerts is a few KB

# Alert labels worth keeping: they say what and where, never who.
LABELS = ("alertname", "severity", "site", "host", "instance", "job", "tier", "unit", "name",
          "mountpoint", "device", "fstype", "module", "target", "env", "role")
# Annotations kept (written by our own rules: templates/monitoring/).
ANNOTATIONS = ("summary", "runbook")
# Fields of a record appended by a task (restore, release, update).
RECORD_FIELDS = ("kind", "status", "what", "site", "host", "tier", "severity", "result",
                 "started", "resolved", "seconds", "snapshot", "release", "previous",
                 "outcome", "errors", "go_back", "source", "by",
                 # an update's (issue 15): the artifact, the ref, how qualification went
                 "artifact", "ref", "qualification", "maintenance_seconds", "env")
KINDS = ("alert", "restore", "release", "update", "backup", "note")
MAX_TEXT = 500
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
NULL_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end yet"


class BadPayload(ValueError):
    """A notification or record that cannot be written; the message names the field."""


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scrub(text: object) -> str:
    """Free text as written: e-mail addresses redacted, length bounded."""
    return EMAIL.sub("<redacted>", str(text))[:MAX_TEXT]


def clean_labels(labels: object, field: str) -> dict[str, str]:
    """The allow-listed labels whose value is a short string holding no e-mail address."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise BadPayload(f"{field}: expected an object, got {type(labels).__name__}")
    out = {}
    for key in LABELS:
        value = labels.get(key)
        if isinstance(value, str) and len(value) <= 200 and not EMAIL.search(value) \
                and "@" not in value:
            out[key] = value
    return out


def _host(labels: dict[str, str]) -> str | None:
    if "host" in labels:
        return labels["host"]
    instance = labels.get("instance")
    if not instance or "://" in instance:  # a probe's target URL is the site, not a host
        return None
    return instance.rsplit(":", 1)[0] if instance.count(":") == 1 else instance


def _time(value: object, field: str) -> str | None:
    if value in (None, "", NULL_TIME):
        return None
    if not isinstance(value, str):
        raise BadPayload(f"{field}: expected an RFC 3339 time, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadPayload(f"{field}: {value[:40]!r} is not an RFC 3339 time") from None
    if moment.year <= 1:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_notification(payload: object, received: str | None = None) -> list[dict]:
    """One record per alert of an Alertmanager webhook notification (version 4)."""
    if not isinstance(payload, dict):
        raise BadPayload("notification: expected a JSON object")
    if str(payload.get("version", "")) != "4":
        raise BadPayload(f"version: {payload.get('version')!r}, expected \"4\" "
                         "(Alertmanager webhook)")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise BadPayload("alerts: expected a list")
    received = received or utc_now()
    receiver = payload.get("receiver")
    out = []
    for i, alert in enumerate(alerts):
        field = f"alerts[{i}]"
        if not isinstance(alert, dict):
            raise BadPayload(f"{field}: expected an object")
        status = alert.get("status", payload.get("status"))
        if status not in ("firing", "resolved"):
            raise BadPayload(f"{field}.status: {status!r} is not firing or resolved")
        labels = clean_labels(alert.get("labels"), f"{field}.labels")
        annotations = alert.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise BadPayload(f"{field}.annotations: expected an object")
        record = {
            "schema": SCHEMA, "time": received, "kind": "alert", "status": status,
            "what": labels.get("alertname", "unnamed alert"),
            "severity": labels.get("severity"), "site": labels.get("site"),
            "host": _host(labels), "tier": labels.get("tier"),
            "started": _time(alert.get("startsAt"), f"{field}.startsAt"),
            "resolved": (_time(alert.get("endsAt"), f"{field}.endsAt")
                         if status == "resolved" else None),
            "labels": labels,
            "fingerprint": (alert.get("fingerprint") if isinstance(alert.get("fingerprint"), str)
                            and re.fullmatch(r"[0-9a-f]{1,32}", alert["fingerprint"]) else None),
            "receiver": scrub(receiver) if isinstance(receiver, str) else None,
        }
        for key in ANNOTATIONS:
            value = annotations.get(key)
            if isinstance(value, str) and value:
                record[key] = scrub(value)
        out.append(record)
    return out


def clean_record(data: object) -> dict:
    """A task's record (restore, release, update) reduced to the allowed fields."""
    if not isinstance(data, dict):
        raise BadPayload("record: expected a JSON object")
    kind = data.get("kind")
    if kind not in KINDS:
        raise BadPayload(f"record.kind: {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(data.get("what"), str) or not data["what"]:
        raise BadPayload("record.what: a short text saying what happened is required")
    out: dict = {"schema": SCHEMA, "time": utc_now()}
    for key in RECORD_FIELDS:
        if key not in data or data[key] is None:
            continue
        value = data[key]
        if isinstance(value, bool | int | float):
            out[key] = value
        elif isinstance(value, list):
            out[key] = [scrub(v) for v in value[:20]]
        else:
            out[key] = scrub(value)
    return out


def append(log: str | os.PathLike, record: dict) -> None:
    """One JSON line, appended atomically (O_APPEND, one write, flock, fsync)."""
    path = Path(log)
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        if created and os.geteuid() == 0:
            # Created by root (a task's append before the service ever wrote): give it to
            # the service's user, the owner of the directory, so the service can append.
            st = os.stat(path.parent)
            os.fchown(fd, st.st_uid, st.st_gid)
        fcntl.flock(fd, fcntl.LOCK_EX)
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_all(log: str | os.PathLike) -> list[dict]:
    """Every record, oldest first: rotated files (N, ..., 2.gz, 1) then the live file."""
    path = Path(log)
    rotated = []
    for p in path.parent.glob(path.name + ".*"):
        m = re.fullmatch(re.escape(path.name) + r"\.(\d+)(\.gz)?", p.name)
        if m:
            rotated.append((int(m.group(1)), p))
    files = [p for _n, p in sorted(rotated, reverse=True)]
    if path.exists():
        files.append(path)
    out = []
    for p in files:
        opener = gzip.open if p.name.endswith(".gz") else open
        with opener(p, "rt") as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        out.append({"kind": "unreadable", "what": f"{p.name}: {line[:80]}"})
    return out


class Handler(BaseHTTPRequestHandler):
    log_path = DEFAULT_LOG
    server_version = "hosting-incidents/1"
    sys_version = ""

    def _answer(self, code: int, body: dict) -> None:
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 -- http.server's name
        if self.path == "/healthz":
            self._answer(200, {"ok": True})
        else:
            self._answer(404 if self.path != PATH else 405, {"error": "POST /alertmanager"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != PATH:
            self._answer(404, {"error": f"no such path; POST {PATH}"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, {"error": "Content-Length required"})
            return
        if not 0 < length <= MAX_BODY:
            self._answer(413, {"error": f"body of {length} bytes (1..{MAX_BODY})"})
            return
        body = self.rfile.read(length)
        try:
            records = parse_notification(json.loads(body))
        except (ValueError, UnicodeDecodeError) as exc:
            self._answer(400, {"error": str(exc)})
            return
        try:
            for record in records:
                append(self.log_path, record)
        except OSError as exc:
            # 500: Alertmanager retries the notification.
            self._answer(500, {"error": f"incident log not written: {exc}"})
            return
        self._answer(200, {"appended": len(records)})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # To the journal, without the client address (always 127.0.0.1).
        sys.stderr.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")


def serve(listen: str, log: str) -> None:
    host, _, port = listen.rpartition(":")
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit(f"--listen {listen}: the receiver listens on the loopback only")
    handler = type("Bound", (Handler,), {"log_path": log})
    server = HTTPServer((host, int(port)), handler)
    print(f"incident receiver on {listen}{PATH}, log {log}", file=sys.stderr, flush=True)
    notify_ready()
    server.serve_forever()


def notify_ready() -> bool:
    """Tell systemd (Type=notify) the port is bound: `systemctl restart` returns only then,
    so nothing posts to a receiver that is not listening yet."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(b"READY=1")
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hosting-incidents")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--listen", default=DEFAULT_LISTEN)
    p.add_argument("--log", default=DEFAULT_LOG)
    for name in ("append", "show"):
        sub.add_parser(name).add_argument("--log", default=DEFAULT_LOG)
    a = ap.parse_args(argv)
    if a.command == "serve":
        serve(a.listen, a.log)
        return 0
    if a.command == "show":
        for record in read_all(a.log):
            sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
        return 0
    try:
        record = clean_record(json.loads(sys.stdin.read()))
        append(a.log, record)
    except (ValueError, OSError) as exc:
        print(f"hosting-incidents append: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(record, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
