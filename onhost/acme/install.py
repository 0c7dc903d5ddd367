"""The proxy's side of an ACME certificate deploy (issue 14, R-SCOPE-2), run as root by the
forced command of the ops host's `acme-deploy` certificate (roles/acme/role.py).

    python3 -I install.py --config PATH  < {"lineage": NAME, "fullchain": PEM, "privkey": PEM}

PATH (root's, written by `fab deploy` from the inventory: roles/acme) names the lineages this
proxy accepts, and for each: the names its certificate must carry, where its pair goes, and
the (site IP, name) pairs nginx serves it on. The caller chooses only which of them it sends.

1. checks the pair: PEM blocks, the key matches the leaf, the leaf carries every name of its
   set and is valid now and for at least MIN_DAYS (openssl);
2. saves the live pair (PATH.prev), then writes the key and the chain (each to a temporary
   file beside it, then an atomic rename; the key 0600 before it holds anything);
3. `nginx -t`, then `systemctl reload nginx` (graceful: no request is dropped);
4. sees nginx serve it: a TLS handshake on each of the set's site IPs with the site's name
   until the served serial is the new one, PROBE_SECONDS at most (a reload returns before the
   new workers answer; a reload that never takes is a failure, not a success);
5. on any failure after step 2: puts the saved pair back, reloads nginx on it, and exits 1
   naming every error. Output: one JSON line {"ok", "lineage", "serial", "not_after",
   "served_after", "errors"}.
Nothing secret is printed: the key never leaves stdin and its file. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

MAX_INPUT = 256 * 1024
MIN_DAYS = 2
PROBE_SECONDS = 30.0
_LINEAGE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,252}$")


def run(argv: list[str], stdin: bytes = b"", timeout: int = 60) -> tuple[int, str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=env,
                           check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace").strip()


def san_names(chain: str) -> set[str]:
    """The leaf's DNS names (subjectAltName), lower-case."""
    rc, out = run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], chain.encode())
    if rc != 0:
        return set()
    return {m.lower() for m in re.findall(r"DNS:([^\s,]+)", out)}


def check_pair(chain: str, key: str, names: Sequence[str] = ()) -> tuple[str, str]:
    """(serial, notAfter) of the leaf, or ValueError saying what is wrong."""
    if "-----BEGIN CERTIFICATE-----" not in chain:
        raise ValueError("fullchain: no PEM certificate")
    if "PRIVATE KEY-----" not in key:
        raise ValueError("privkey: no PEM private key")
    rc, cert_pub = run(["openssl", "x509", "-noout", "-pubkey"], chain.encode())
    if rc != 0:
        raise ValueError(f"fullchain: unreadable certificate: {cert_pub[-200:]}")
    rc, key_pub = run(["openssl", "pkey", "-pubout"], key.encode())
    if rc != 0:
        raise ValueError("privkey: unreadable private key")
    if cert_pub.strip() != key_pub.strip():
        raise ValueError("the private key does not match the certificate")
    missing = sorted({n.lower() for n in names} - san_names(chain)) if names else []
    if missing:
        raise ValueError(f"the certificate does not carry {', '.join(missing)}")
    rc, out = run(["openssl", "x509", "-noout", "-checkend", str(MIN_DAYS * 86400)],
                  chain.encode())
    if rc != 0:
        raise ValueError(f"the certificate expires within {MIN_DAYS} days or is not valid")
    rc, out = run(["openssl", "x509", "-noout", "-serial", "-enddate"], chain.encode())
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return fields.get("serial", "").lower(), fields.get("notAfter", "")


def served_serial(ip: str, name: str, timeout: float = 5.0, port: int = 443) -> str:
    """The serial of the certificate nginx serves on ip:443 for SNI `name` (not verified:
    compared), in openssl's notation; "" when the handshake fails."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((ip, port), timeout=timeout) as sock, \
                ctx.wrap_socket(sock, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True) or b""
    except (OSError, ssl.SSLError):
        return ""
    rc, out = run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], der)
    return out.partition("=")[2].strip().lower() if rc == 0 else ""


def wait_served(probes: Sequence[Sequence[str]], serial: str, within: float = PROBE_SECONDS,
                probe: Callable[[str, str], str] = served_serial,
                clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> tuple[list[str], float]:
    """Wait until every (ip, name) serves `serial`; ([errors], seconds waited)."""
    start = clock()
    pending = [(str(ip), str(name)) for ip, name in probes]
    last: dict[tuple[str, str], str] = {}
    while True:
        for p in list(pending):
            last[p] = probe(*p)
            if last[p] == serial:
                pending.remove(p)
        waited = clock() - start
        if not pending or waited >= within:
            break
        sleep(0.25)
    return ([f"nginx does not serve serial {serial} on {ip} for {name} after {within:g} s "
             f"(it serves {last[(ip, name)] or 'nothing'})" for ip, name in pending],
            round(waited, 2))


def write_atomic(path: str, data: bytes, mode: int) -> None:
    tmp = f"{path}.new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def save(paths: list[str]) -> list[str]:
    saved = []
    for p in paths:
        if os.path.exists(p):
            shutil.copy2(p, f"{p}.prev")
            saved.append(p)
    return saved


def restore(saved: list[str], written: list[str]) -> list[str]:
    errors = []
    for p in written:
        try:
            if p in saved:
                os.replace(f"{p}.prev", p)
            else:
                os.unlink(p)
        except OSError as exc:
            errors.append(f"putting {p} back: {exc}")
    return errors


def install(chain: str, key: str, cert_path: str, key_path: str, names: Sequence[str] = (),
            probes: Sequence[Sequence[str]] = (), within: float = PROBE_SECONDS,
            probe: Callable[[str, str], str] = served_serial) -> dict:
    try:
        serial, not_after = check_pair(chain, key, names)
    except ValueError as exc:
        return {"ok": False, "errors": [str(exc)], "changed": False}
    saved = save([key_path, cert_path])
    written: list[str] = []
    errors: list[str] = []
    served_after = None
    try:
        os.makedirs(os.path.dirname(key_path), mode=0o755, exist_ok=True)
        # The key first: nginx must never load the new certificate with the old key.
        write_atomic(key_path, key.encode(), 0o600)
        written.append(key_path)
        write_atomic(cert_path, chain.encode(), 0o644)
        written.append(cert_path)
    except OSError as exc:
        errors.append(f"writing: {exc}")
    if not errors:
        rc, out = run(["nginx", "-t", "-q"])
        if rc != 0:
            errors.append(f"nginx -t failed: {out[-300:]}")
    if not errors:
        rc, out = run(["systemctl", "reload", "nginx.service"])
        if rc != 0:
            errors.append(f"nginx reload failed: {out[-300:]}")
    if not errors and probes:
        late, served_after = wait_served(probes, serial, within, probe)
        errors += late
    if errors:
        errors += restore(saved, written)
        rc, out = run(["systemctl", "reload", "nginx.service"])
        if rc != 0:
            errors.append(f"reloading nginx on the previous certificate failed: {out[-300:]}")
        return {"ok": False, "errors": errors, "changed": False, "kept": "previous"}
    return {"ok": True, "serial": serial, "not_after": not_after, "errors": [],
            "changed": True, "served_after": served_after}


def load_config(path: str, lineage: str) -> dict:
    """This lineage's entry of the root-owned configuration; ValueError naming what is wrong."""
    if not isinstance(lineage, str) or not _LINEAGE.match(lineage):
        raise ValueError(f"lineage: {lineage!r} is not a lineage name")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable configuration: {exc}") from None
    entry = (doc.get("lineages") or {}).get(lineage)
    if not isinstance(entry, dict):
        raise ValueError(f"lineage: {lineage!r} is not one this proxy serves "
                         f"({', '.join(sorted(doc.get('lineages') or {})) or 'none'})")
    for field in ("cert", "key"):
        if not str(entry.get(field, "")).startswith("/"):
            raise ValueError(f"{path}: lineages.{lineage}.{field}: not an absolute path")
    return entry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hosting-acme-install")
    ap.add_argument("--config", required=True)
    a = ap.parse_args(argv)
    raw = sys.stdin.buffer.read(MAX_INPUT + 1)
    lineage = ""
    try:
        if len(raw) > MAX_INPUT:
            raise ValueError(f"input larger than {MAX_INPUT} bytes")
        doc = json.loads(raw)
        chain, key, lineage = doc["fullchain"], doc["privkey"], doc["lineage"]
        if not isinstance(chain, str) or not isinstance(key, str):
            raise ValueError("fullchain and privkey must be PEM strings")
        entry = load_config(a.config, lineage)
    except (ValueError, KeyError, TypeError) as exc:
        result = {"ok": False, "errors": [f"input: {exc}"], "changed": False}
    else:
        result = install(chain, key, entry["cert"], entry["key"], entry.get("names") or (),
                         entry.get("probes") or ())
    print(json.dumps({**result, "lineage": lineage if isinstance(lineage, str) else ""},
                     sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
