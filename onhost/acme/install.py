"""The proxy's side of an ACME certificate deploy (issue 14, R-SCOPE-2), run as root by the
forced command of the ops host's `acme-deploy` certificate (roles/acme/role.py).

    python3 -I install.py --cert PATH --key PATH   < {"fullchain": PEM, "privkey": PEM}

1. checks the pair: PEM blocks, the key matches the leaf, the leaf is valid now and for at
   least MIN_DAYS (openssl);
2. saves the live pair (PATH.prev), then writes the key and the chain (each to a temporary
   file beside it, then an atomic rename; the key 0600 before it holds anything);
3. `nginx -t`, then `systemctl reload nginx` (graceful: no request is dropped);
4. on any failure after step 2: puts the saved pair back, reloads nginx on it, and exits 1
   naming every error. Output: one JSON line {"ok", "serial", "not_after", "errors"}.
Nothing secret is printed: the key never leaves stdin and its file.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

MAX_INPUT = 256 * 1024
MIN_DAYS = 2


def run(argv: list[str], stdin: bytes = b"", timeout: int = 60) -> tuple[int, str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=env,
                           check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace").strip()


def check_pair(chain: str, key: str) -> tuple[str, str]:
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
    rc, out = run(["openssl", "x509", "-noout", "-checkend", str(MIN_DAYS * 86400)],
                  chain.encode())
    if rc != 0:
        raise ValueError(f"the certificate expires within {MIN_DAYS} days or is not valid")
    rc, out = run(["openssl", "x509", "-noout", "-serial", "-enddate"], chain.encode())
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return fields.get("serial", "").lower(), fields.get("notAfter", "")


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


def install(chain: str, key: str, cert_path: str, key_path: str) -> dict:
    try:
        serial, not_after = check_pair(chain, key)
    except ValueError as exc:
        return {"ok": False, "errors": [str(exc)], "changed": False}
    saved = save([key_path, cert_path])
    written: list[str] = []
    errors: list[str] = []
    try:
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
    if errors:
        errors += restore(saved, written)
        rc, out = run(["systemctl", "reload", "nginx.service"])
        if rc != 0:
            errors.append(f"reloading nginx on the previous certificate failed: {out[-300:]}")
        return {"ok": False, "errors": errors, "changed": False, "kept": "previous"}
    return {"ok": True, "serial": serial, "not_after": not_after, "errors": [],
            "changed": True}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hosting-acme-install")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    a = ap.parse_args(argv)
    raw = sys.stdin.buffer.read(MAX_INPUT + 1)
    try:
        if len(raw) > MAX_INPUT:
            raise ValueError(f"input larger than {MAX_INPUT} bytes")
        doc = json.loads(raw)
        chain, key = doc["fullchain"], doc["privkey"]
        if not isinstance(chain, str) or not isinstance(key, str):
            raise ValueError("fullchain and privkey must be PEM strings")
    except (ValueError, KeyError, TypeError) as exc:
        result = {"ok": False, "errors": [f"input: {exc}"], "changed": False}
    else:
        result = install(chain, key, a.cert, a.key)
    print(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
