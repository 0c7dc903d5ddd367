"""The ops host's certbot hooks (issue 14, R-SCOPE-2, R-INC-4).

    deploy_hook.py deploy [--lineage DIR]     certbot's deploy hook ($RENEWED_LINEAGE)
    deploy_hook.py failed --unit UNIT         OnFailure= of certbot.service (renewal failed)

`deploy`: sends the lineage's name, fullchain.pem and privkey.pem (JSON on stdin, never argv)
to the proxy over the project's certificate-only SSH (ssh -F CONFIG proxy: the ops host's
`acme-deploy` certificate, whose forced command is the proxy's installer; the proxy proves
itself with its host certificate). The installer checks the pair against its lineage's names,
saves the live one, runs `nginx -t`, reloads, waits until nginx serves the new serial on the
lineage's site IPs, and puts the old pair back on any failure. The result is written to
STATUS; a failure is appended to the incident record on ops and the hook exits 1 (certbot
logs it; the proxy still serves the previous certificate).

`failed`: certbot.service failed (a renewal whose DNS call failed, say): nothing was issued,
so the proxy keeps its certificate; one incident record says so, with where to look.
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SSH_CONFIG = "/etc/hosting/acme/ssh/ssh_config"
STATUS = "/var/lib/hosting/acme/last-deploy.json"
RECEIVER = "/usr/local/lib/hosting/incidents/receiver.py"
INCIDENTS_LOG = "/var/log/hosting/incidents/incidents.jsonl"
PYTHON = "/usr/bin/python3"
TIMEOUT = 120


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_status(path: str, doc: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.new"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def record_incident(record: dict, receiver: str = RECEIVER, log: str = INCIDENTS_LOG) -> str:
    """Append one record through the incident receiver's own code; '' or why it failed.
    Never raises: the record is not worth hiding the failure it reports."""
    if not os.path.exists(receiver):
        return f"no incident receiver at {receiver}"
    try:
        p = subprocess.run([PYTHON, "-I", receiver, "append", "--log", log],
                           input=json.dumps(record).encode(), capture_output=True,
                           timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return "" if p.returncode == 0 else p.stderr.decode(errors="replace").strip()[-300:]


def push(lineage: str, ssh_config: str, host: str = "proxy") -> dict:
    """Send the lineage's pair to the proxy's installer; its JSON result (ok False on error)."""
    try:
        with open(os.path.join(lineage, "fullchain.pem"), encoding="ascii") as f:
            chain = f.read()
        with open(os.path.join(lineage, "privkey.pem"), encoding="ascii") as f:
            key = f.read()
    except OSError as exc:
        return {"ok": False, "errors": [f"reading {lineage}: {exc}"]}
    # The proxy's installer accepts only the lineages its root-owned configuration names.
    payload = json.dumps({"lineage": os.path.basename(lineage.rstrip("/")),
                          "fullchain": chain, "privkey": key}).encode()
    try:
        p = subprocess.run(["ssh", "-F", ssh_config, host], input=payload,
                           capture_output=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "errors": [f"ssh {host}: {exc}"]}
    out = p.stdout.decode(errors="replace").strip().splitlines()
    try:
        result = json.loads(out[-1]) if out else {}
    except ValueError:
        result = {}
    if not isinstance(result, dict) or "ok" not in result:
        err = p.stderr.decode(errors="replace").strip()[-300:]
        return {"ok": False, "errors": [f"ssh {host} exited {p.returncode}: {err}"]}
    if p.returncode != 0 and result.get("ok"):
        result = {**result, "ok": False, "errors": [f"ssh {host} exited {p.returncode}"]}
    return result


def deploy(lineage: str, ssh_config: str = SSH_CONFIG, status: str = STATUS,
           receiver: str = RECEIVER, log: str = INCIDENTS_LOG) -> int:
    started = utc_now()
    result = push(lineage, ssh_config)
    doc = {"time": started, "lineage": lineage, **result}
    if not result.get("ok"):
        why = record_incident({
            "kind": "note", "status": "failed", "host": "proxy", "started": started,
            "what": f"ACME certificate {os.path.basename(lineage)}: deploying to the proxy "
                    "failed; the proxy keeps serving the previous certificate",
            "errors": [str(e) for e in result.get("errors", [])][:10],
            "go_back": "fix the cause, then: fab acme.deploy (docs/tls.md)",
            "source": "certbot deploy hook"}, receiver, log)
        doc["incident"] = why or "recorded"
    write_status(status, doc)
    print(json.dumps(doc, sort_keys=True))
    return 0 if result.get("ok") else 1


def failed(unit: str, receiver: str = RECEIVER, log: str = INCIDENTS_LOG) -> int:
    why = record_incident({
        "kind": "note", "status": "failed", "host": "ops", "started": utc_now(),
        "what": f"ACME renewal failed ({unit}): no new certificate; the proxy keeps "
                "serving the previous one",
        "go_back": f"journalctl -u {unit}; fix the cause (OVH credentials, DNS), then "
                   "systemctl start certbot.service (docs/tls.md)",
        "source": "certbot.service OnFailure"}, receiver, log)
    if why:
        print(f"hosting-acme: the incident record failed: {why}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hosting-acme-hook")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("deploy")
    d.add_argument("--lineage", default=os.environ.get("RENEWED_LINEAGE", ""))
    d.add_argument("--ssh-config", default=SSH_CONFIG)
    f = sub.add_parser("failed")
    f.add_argument("--unit", default="certbot.service")
    a = ap.parse_args(argv)
    if a.command == "failed":
        return failed(a.unit)
    if not a.lineage:
        print("hosting-acme-hook: --lineage or $RENEWED_LINEAGE is required", file=sys.stderr)
        return 2
    return deploy(a.lineage, a.ssh_config)


if __name__ == "__main__":
    sys.exit(main())
