"""certbot's DNS-01 hooks for the OVH DNS zone (issue 14, R-SCOPE-2), run on ops by certbot
(`--manual --preferred-challenges dns`, cli.ini). Standard library only.

Why not certbot-dns-ovh: Debian 13 ships certbot (4.0) but neither python3-certbot-dns-ovh
nor python3-lexicon (Debian 12's 2.1 plugin needs python3-certbot-abi-2, which certbot 4.0
does not provide). These hooks make the OVH API calls DNS-01 needs, signed the way OVH
documents (and as the plugin did), with fewer rights than the plugin needed:

  auth     POST /domain/zone/Z/record {fieldType TXT, subDomain _acme-challenge[.sub], target},
           POST /domain/zone/Z/refresh, then wait --propagation-seconds; prints the record id
           (certbot hands it to the cleanup hook as CERTBOT_AUTH_OUTPUT)
  cleanup  DELETE /domain/zone/Z/record/ID for those ids, POST /domain/zone/Z/refresh

`GET /auth/time` (unauthenticated) gives the server's clock for the timestamps. The consumer
key needs only POST .../record, DELETE .../record/* and POST .../refresh on that zone
(roles/acme/config.access_rules; `fab acme.credentials` prints them).

Credentials: certbot-dns-ovh's INI format (dns_ovh_endpoint, dns_ovh_application_key,
dns_ovh_application_secret, dns_ovh_consumer_key), a 0600 root file; never in argv or output.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
import time
import urllib.error
import urllib.request
from typing import Any

ENDPOINTS = {"ovh-eu": "https://eu.api.ovh.com/1.0", "ovh-ca": "https://ca.api.ovh.com/1.0",
             "ovh-us": "https://api.us.ovhcloud.com/1.0"}
FIELDS = ("dns_ovh_endpoint", "dns_ovh_application_key", "dns_ovh_application_secret",
          "dns_ovh_consumer_key")
TIMEOUT = 30


class OvhError(RuntimeError):
    pass


def read_credentials(path: str) -> dict[str, str]:
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise OvhError(f"credentials {path}: {exc.strerror}") from exc
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise OvhError(f"credentials {path}: mode {stat.S_IMODE(st.st_mode):04o}, must be 0600")
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith("#"):
            out[key.strip()] = value.strip()
    missing = [f for f in FIELDS if not out.get(f)]
    if missing:
        raise OvhError(f"credentials {path}: {', '.join(missing)} missing")
    if out["dns_ovh_endpoint"] not in ENDPOINTS:
        raise OvhError(f"credentials {path}: dns_ovh_endpoint: "
                       f"{out['dns_ovh_endpoint']!r} is not one of {', '.join(ENDPOINTS)}")
    return out


def signature(secret: str, consumer: str, method: str, url: str, body: str, ts: str) -> str:
    raw = "+".join([secret, consumer, method.upper(), url, body, ts])
    return "$1$" + hashlib.sha1(raw.encode("utf-8")).hexdigest()  # noqa: S324 - OVH's scheme


class Client:
    def __init__(self, creds: dict[str, str], base: str | None = None):
        self.base = base or ENDPOINTS[creds["dns_ovh_endpoint"]]
        self.ak = creds["dns_ovh_application_key"]
        self.secret = creds["dns_ovh_application_secret"]
        self.ck = creds["dns_ovh_consumer_key"]
        self.delta: int | None = None

    def _send(self, method: str, url: str, body: str, headers: dict[str, str]) -> Any:
        req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 - https
                data = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            try:
                detail = json.loads(detail).get("message", detail)
            except (ValueError, AttributeError):
                pass
            raise OvhError(f"{method} {url.split('?')[0]}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise OvhError(f"{method} {url.split('?')[0]}: {exc}") from exc
        return json.loads(data) if data.strip() else None

    def call(self, method: str, path: str, doc: Any = None) -> Any:
        if self.delta is None:
            self.delta = int(self._send("GET", f"{self.base}/auth/time", "", {})) - int(time.time())
        url = f"{self.base}{path}"
        body = json.dumps(doc) if doc is not None else ""
        ts = str(int(time.time()) + self.delta)
        headers = {"X-Ovh-Application": self.ak, "X-Ovh-Consumer": self.ck,
                   "X-Ovh-Timestamp": ts,
                   "X-Ovh-Signature": signature(self.secret, self.ck, method, url, body, ts)}
        if body:
            headers["Content-Type"] = "application/json"
        return self._send(method, url, body, headers)


def sub_domain(domain: str, zone: str) -> str:
    """The TXT record's name inside the zone for CERTBOT_DOMAIN (wildcards come without *.)."""
    domain, zone = domain.lower().rstrip(".").removeprefix("*."), zone.lower().rstrip(".")
    if domain == zone:
        return "_acme-challenge"
    if not domain.endswith("." + zone):
        raise OvhError(f"{domain} is not inside the zone {zone}")
    return f"_acme-challenge.{domain[:-len(zone) - 1]}"


def auth(client: Client, zone: str, domain: str, validation: str) -> int:
    rec = client.call("POST", f"/domain/zone/{zone}/record",
                      {"fieldType": "TXT", "subDomain": sub_domain(domain, zone),
                       "target": validation, "ttl": 60})
    client.call("POST", f"/domain/zone/{zone}/refresh")
    return int(rec["id"])


def cleanup(client: Client, zone: str, ids: list[int]) -> list[str]:
    errors = []
    for rid in ids:
        try:
            client.call("DELETE", f"/domain/zone/{zone}/record/{rid}")
        except OvhError as exc:
            errors.append(str(exc))
    try:
        client.call("POST", f"/domain/zone/{zone}/refresh")
    except OvhError as exc:
        errors.append(str(exc))
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hosting-acme-ovh")
    ap.add_argument("command", choices=("auth", "cleanup"))
    ap.add_argument("--credentials", required=True)
    ap.add_argument("--zone", required=True)
    ap.add_argument("--propagation-seconds", type=int, default=120)
    a = ap.parse_args(argv)
    try:
        client = Client(read_credentials(a.credentials))
        if a.command == "auth":
            rid = auth(client, a.zone, os.environ["CERTBOT_DOMAIN"],
                       os.environ["CERTBOT_VALIDATION"])
            time.sleep(max(0, a.propagation_seconds))
            print(rid)
            return 0
        ids = [int(x) for x in os.environ.get("CERTBOT_AUTH_OUTPUT", "").split() if x.isdigit()]
        errors = cleanup(client, a.zone, ids)
    except (OvhError, KeyError, ValueError) as exc:
        print(f"hosting-acme-ovh {a.command}: {exc}", file=sys.stderr)
        return 1
    for e in errors:
        print(f"hosting-acme-ovh cleanup: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
