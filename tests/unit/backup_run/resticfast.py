"""Make test repositories fast to open: re-encrypt their key files with a weak scrypt.

restic calibrates its key derivation (scrypt) at `init` to take about 0.5 s, so every restic
command of a test pays 0.4-0.5 s before doing anything: 400 days of backups, copies and
rotations would take most of an hour. restic reads the scrypt parameters from each key file,
so a key re-encrypted with N=1024 opens in a millisecond while everything else (the master
key, the data, the chunker parameters) stays the same.

FOR TEST REPOSITORIES ONLY: production repositories keep restic's calibrated key. This
needs the `cryptography` package (in the venv, as paramiko's dependency), never on hosts.

Key file format (restic design document, "Keys, Encryption and MAC"): JSON with kdf, N, r,
p, salt, data; data = IV(16) || AES-256-CTR(master key JSON) || Poly1305-AES MAC(16), with
the user key = scrypt(password, salt, N, r, p, 64 bytes) split as 32 bytes AES key, 16
bytes MAC k, 16 bytes MAC r.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

FAST_N, FAST_R, FAST_P = 1024, 8, 1


def _derive(password: bytes, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes, bytes]:
    key = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=2**31 - 1, dklen=64)
    return key[:32], key[32:48], key[48:64]


def _mac(k: bytes, r: bytes, nonce: bytes, data: bytes) -> bytes:
    aes = Cipher(algorithms.AES(k), modes.ECB()).encryptor()  # noqa: S305 (one block: AES_k(nonce))
    s = aes.update(nonce) + aes.finalize()
    return Poly1305.generate_tag(r + s, data)


def _decrypt(key: tuple[bytes, bytes, bytes], blob: bytes) -> bytes:
    enc, k, r = key
    iv, body, tag = blob[:16], blob[16:-16], blob[-16:]
    if _mac(k, r, iv, body) != tag:
        raise ValueError("wrong password for this key file")
    d = Cipher(algorithms.AES(enc), modes.CTR(iv)).decryptor()
    return d.update(body) + d.finalize()


def _encrypt(key: tuple[bytes, bytes, bytes], plain: bytes) -> bytes:
    enc, k, r = key
    iv = os.urandom(16)
    e = Cipher(algorithms.AES(enc), modes.CTR(iv)).encryptor()
    body = e.update(plain) + e.finalize()
    return iv + body + _mac(k, r, iv, body)


def make_fast(repo: Path, password: bytes) -> int:
    """Re-encrypt every key file of a local repository directory; returns how many changed.

    Ownership and mode of each key file are kept (a storage server's repository belongs to
    the site's storage user)."""
    changed = 0
    keys = Path(repo) / "keys"
    for path in sorted(keys.iterdir()):
        doc = json.loads(path.read_bytes())
        if (doc["N"], doc["r"], doc["p"]) == (FAST_N, FAST_R, FAST_P):
            continue
        slow = _derive(password, base64.b64decode(doc["salt"]), doc["N"], doc["r"], doc["p"])
        master = _decrypt(slow, base64.b64decode(doc["data"]))
        salt = os.urandom(64)
        fast = _derive(password, salt, FAST_N, FAST_R, FAST_P)
        new = {**doc, "N": FAST_N, "r": FAST_R, "p": FAST_P,
               "salt": base64.b64encode(salt).decode(),
               "data": base64.b64encode(_encrypt(fast, master)).decode()}
        raw = json.dumps(new).encode()
        target = keys / hashlib.sha256(raw).hexdigest()  # restic names files by their hash
        st = path.stat()
        target.write_bytes(raw)
        os.chown(target, st.st_uid, st.st_gid)
        os.chmod(target, st.st_mode & 0o777)
        path.unlink()
        changed += 1
    return changed
