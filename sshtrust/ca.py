"""An SSH certificate authority over ``ssh-keygen`` (R-GDPR-5, R-BKP-7: access by certificate).

Layout beside a CA key ``<dir>/user_ca`` (the caller names the directory, mode 0700):
  user_ca            private ed25519 key, unencrypted, 0600 (ssh-keygen reads it; never argv)
  user_ca.pub        public key (sshd TrustedUserCAKeys / known_hosts @cert-authority)
  user_ca.serial     last serial issued; updated under an fcntl lock so serials stay unique
  user_ca.issued     one JSON line per certificate issued: the register the audit reads (R-INC-3)
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ._run import SshTrustError, run_keygen
from .certificate import Certificate, load_certificate
from .keys import fingerprint, read_pubkey

__all__ = [
    "CaError",
    "FingerprintMismatch",
    "IssuedCertificate",
    "create_ca",
    "fingerprint",
    "init_krl",
    "is_revoked",
    "issued",
    "make_key_id",
    "revoke",
    "sign_host_key",
    "sign_user_key",
]

DEFAULT_HOST_VALIDITY = "-5m:+52w"
DEFAULT_USER_TTL = timedelta(hours=8)
# Interactive admins get a terminal and nothing else: no agent, X11 or port forwarding,
# no user rc (R-GDPR-5: server access strictly reserved, no side channels by default).
DEFAULT_USER_OPTIONS: tuple[str, ...] = ("permit-pty",)
# Clock skew allowance: a cert minted now must work on a host whose clock is a bit behind.
BACKDATE = "-5m"

_PRINCIPAL_RE = re.compile(r"^[A-Za-z0-9_.@:+-]+$")
_KEY_ID_RE = re.compile(r"^[\x21-\x7e]+$")


class CaError(SshTrustError):
    """A CA operation was refused or failed."""


class FingerprintMismatch(CaError):
    """The key to sign is not the key that was pinned (never trust on first use)."""


@dataclass(frozen=True)
class IssuedCertificate:
    """A line of the CA's register (``<ca>.issued``)."""

    serial: int
    key_id: str
    cert_type: str
    principals: tuple[str, ...]
    key_fingerprint: str
    valid_after: int
    valid_before: int
    issued_at: str
    certificate: str


# --- CA keys --------------------------------------------------------------------------------


def create_ca(path: Path, comment: str) -> Path:
    """Create an ed25519 CA key at ``path`` (0600) and ``path.pub``; idempotent.

    An existing key is left untouched, but one whose mode lets others read it is refused:
    a CA key that leaked must be replaced, not silently re-protected.
    """
    path = Path(path)
    pub = _pub_of(path)
    if path.exists():
        _check_private_mode(path)
        if not pub.exists():
            out = run_keygen(f"derive public key of CA {path}", ["-y", "-f", str(path)])
            pub.write_text(f"{out.stdout.strip()} {comment}\n", encoding="ascii")
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # -N '' is an empty passphrase, not a secret: CA keys are unencrypted by design (the
    # directory's protection is the control), so that automation never needs a secret on argv.
    run_keygen(
        f"create CA key {path}",
        ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
    )
    os.chmod(path, 0o600)
    return path


def _pub_of(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _check_private_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CaError(f"CA key {path} has mode {mode:04o}; it must be 0600 (others could read it)")


# --- serials and the register ---------------------------------------------------------------


@contextmanager
def _locked_counter(ca_key: Path) -> Iterator[int]:
    """Hold the CA's lock and yield a fresh serial, written to disk *before* signing: a serial
    is never reused, even when signing fails (a gap is harmless, a duplicate is not: KRLs
    revoke by serial)."""
    counter = ca_key.with_name(ca_key.name + ".serial")
    fd = os.open(counter, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 64).decode("ascii").strip()
        try:
            last = int(raw) if raw else 0
        except ValueError as exc:
            raise CaError(f"serial counter {counter} is corrupt: {raw!r}") from exc
        serial = last + 1  # serial 0 is "no serial": KRLs cannot revoke it, so never issue it
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{serial}\n".encode("ascii"))
        os.fsync(fd)
        yield serial
    finally:
        os.close(fd)  # closing releases the flock


def _record(ca_key: Path, cert_path: Path, cert: Certificate) -> None:
    entry = IssuedCertificate(
        serial=cert.serial,
        key_id=cert.key_id,
        cert_type=cert.cert_type.name.lower(),
        principals=cert.principals,
        key_fingerprint=cert.key_fingerprint,
        valid_after=cert.valid_after,
        valid_before=cert.valid_before,
        issued_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        certificate=str(cert_path),
    )
    register = ca_key.with_name(ca_key.name + ".issued")
    fd = os.open(register, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(entry.__dict__, sort_keys=True) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def issued(ca_key: Path) -> list[IssuedCertificate]:
    """Every certificate this CA issued, in order (the access audit's source, R-INC-3)."""
    register = Path(ca_key).with_name(Path(ca_key).name + ".issued")
    if not register.exists():
        return []
    out = []
    for line in register.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            data["principals"] = tuple(data["principals"])
            out.append(IssuedCertificate(**data))
    return out


def make_key_id(subject: str, when: datetime | None = None) -> str:
    """``user@host-2026-11-26T07:00Z``: who, and when it was issued (UTC, to the minute)."""
    when = (when or datetime.now(UTC)).astimezone(UTC)
    return f"{subject}-{when:%Y-%m-%dT%H:%MZ}"


# --- signing ----------------------------------------------------------------------------------


def _check_principals(principals: Sequence[str]) -> str:
    if isinstance(principals, str):
        raise CaError("principals must be a sequence of names, not one string")
    if not principals:
        # An empty principals list means "valid for ANY principal/host" to OpenSSH: never issue it.
        raise CaError("refusing to sign a certificate with no principals (it would match anyone)")
    for p in principals:
        if not _PRINCIPAL_RE.match(p):
            raise CaError(f"invalid principal {p!r} (letters, digits and _.@:+- only)")
    return ",".join(principals)


def _check_key_id(key_id: str) -> None:
    if not _KEY_ID_RE.match(key_id):
        raise CaError(f"invalid key id {key_id!r} (printable ASCII, no spaces)")


def _sign(
    ca_key: Path,
    pubkey: Path,
    key_id: str,
    principals: Sequence[str],
    validity: str,
    extra: Sequence[str],
    what: str,
) -> Path:
    ca_key, pubkey = Path(ca_key), Path(pubkey)
    _check_key_id(key_id)
    names = _check_principals(principals)
    if not ca_key.exists():
        raise CaError(f"{what}: CA key {ca_key} does not exist")
    _check_private_mode(ca_key)
    if read_pubkey(pubkey).is_certificate:
        raise CaError(f"{what}: {pubkey} is a certificate, not a public key")
    if not pubkey.name.endswith(".pub"):
        raise CaError(f"{what}: {pubkey} must be a .pub file (ssh-keygen names the cert from it)")
    cert_path = pubkey.with_name(pubkey.name[: -len(".pub")] + "-cert.pub")
    with _locked_counter(ca_key) as serial:
        run_keygen(
            what,
            [
                "-q",
                "-s",
                str(ca_key),
                "-I",
                key_id,
                "-n",
                names,
                "-V",
                validity,
                "-z",
                str(serial),
                *extra,
                str(pubkey),
            ],
        )
        cert = load_certificate(cert_path)
        if cert.serial != serial:
            raise CaError(f"{what}: ssh-keygen wrote serial {cert.serial}, expected {serial}")
        _record(ca_key, cert_path, cert)  # under the lock: the register stays in serial order
    return cert_path


def sign_host_key(
    ca_key: Path,
    host_pubkey: Path,
    key_id: str,
    principals: Sequence[str],
    validity: str = DEFAULT_HOST_VALIDITY,
    expected_fingerprint: str | None = None,
) -> Path:
    """Sign a host key; writes ``<stem>-cert.pub`` beside it and returns its path.

    ``expected_fingerprint`` pins the key: the fingerprint must come from a trusted channel (the
    console, the provisioning output), never from the network, so a machine in the middle cannot
    get its own key certified (no trust on first use).
    """
    if expected_fingerprint is not None:
        actual = fingerprint(Path(host_pubkey))
        if actual != expected_fingerprint:
            raise FingerprintMismatch(
                f"refusing to sign {host_pubkey}: fingerprint {actual} != pinned "
                f"{expected_fingerprint}"
            )
    return _sign(
        ca_key, host_pubkey, key_id, principals, validity, ["-h"], f"sign host key {host_pubkey}"
    )


def sign_user_key(
    ca_key: Path,
    user_pubkey: Path,
    key_id: str,
    principals: Sequence[str],
    ttl: timedelta = DEFAULT_USER_TTL,
    options: Sequence[str] = (),
) -> Path:
    """Sign a user key for ``ttl`` (hours, not weeks: a stolen laptop's cert soon dies).

    Every permission is cleared first (``-O clear``), then ``options`` are added; with no options
    the cert gets ``permit-pty`` only. Restricted principals (backup pushes, R-BKP-7) pass e.g.
    ``("force-command=/usr/local/bin/backup-serve", "source-address=10.77.0.0/24")``.
    """
    seconds = int(ttl.total_seconds())
    if seconds <= 0:
        raise CaError(f"ttl must be positive, got {ttl}")
    if isinstance(options, str):
        raise CaError("options must be a sequence of ssh-keygen -O values, not one string")
    extra = ["-O", "clear"]
    for opt in options or DEFAULT_USER_OPTIONS:
        extra += ["-O", opt]
    return _sign(
        ca_key,
        user_pubkey,
        key_id,
        principals,
        f"{BACKDATE}:+{seconds}s",
        extra,
        f"sign user key {user_pubkey}",
    )


# --- revocation (KRL) ---------------------------------------------------------------------------


def init_krl(krl: Path, ca_pub: Path) -> Path:
    """Write an empty KRL if none exists: sshd with ``RevokedKeys`` pointing to a missing file
    refuses every login, so the file must exist from the first boot."""
    krl = Path(krl)
    if krl.exists():
        return krl
    krl.parent.mkdir(parents=True, exist_ok=True)
    _update_krl(krl, ca_pub, [], update=False, what=f"create empty KRL {krl}")
    return krl


def revoke(
    krl: Path,
    ca_pub: Path,
    *,
    serials: Sequence[int] = (),
    key_ids: Sequence[str] = (),
    certificates: Sequence[Path] = (),
) -> Path:
    """Add revocations to ``krl`` (created if missing), for certs signed by ``ca_pub``."""
    lines: list[str] = []
    ca_blob = read_pubkey(Path(ca_pub)).blob
    for s in serials:
        if isinstance(s, bool) or not isinstance(s, int) or s <= 0:
            raise CaError(f"cannot revoke serial {s!r}: serials are positive integers")
        lines.append(f"serial: {s}")
    for k in key_ids:
        _check_key_id(k)
        lines.append(f"id: {k}")
    for cert in certificates:
        c = load_certificate(Path(cert))
        if c.signature_key != ca_blob:
            raise CaError(f"revoke: {cert} was not signed by {ca_pub} (CA {c.ca_fingerprint})")
        # By serial, as ssh-keygen does; by key id only for serial-less certs (not ours).
        lines.append(f"serial: {c.serial}" if c.serial else f"id: {c.key_id}")
    if not lines:
        raise CaError("revoke: nothing to revoke (give serials, key_ids or certificates)")
    _update_krl(Path(krl), ca_pub, lines, update=Path(krl).exists(), what=f"update KRL {krl}")
    return Path(krl)


def _update_krl(krl: Path, ca_pub: Path, lines: Sequence[str], *, update: bool, what: str) -> None:
    with tempfile.NamedTemporaryFile("w", prefix=".krl-spec-", dir=krl.parent) as spec:
        spec.write("".join(f"{line}\n" for line in lines))
        spec.flush()
        args = ["-k", "-f", str(krl), "-s", str(ca_pub)]
        if update:
            args.insert(1, "-u")
        run_keygen(what, [*args, spec.name])
    os.chmod(krl, 0o644)  # sshd reads it; it holds no secret


def is_revoked(krl: Path, cert_path: Path) -> bool:
    """True when ``cert_path`` (a certificate or a plain key) is revoked by ``krl``."""
    proc = run_keygen(
        f"check {cert_path} against KRL {krl}",
        ["-Q", "-f", str(krl), str(cert_path)],
        ok_codes=(0, 1),
    )
    if proc.returncode == 1:
        if "REVOKED" in proc.stdout:
            return True
        raise CaError(f"checking {cert_path} against {krl} failed: {proc.stderr.strip()}")
    return False
