"""Verify an SSH signature blob made by a plain public key (CA keys), with ``cryptography``.

Only algorithms OpenSSH accepts by default for CA signatures: ed25519, ECDSA P-256/384/521
and RSA with SHA-2. ``ssh-rsa`` (SHA-1) signatures are refused, as OpenSSH >= 8.2 does.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ._run import SshTrustError
from ._wire import Reader, WireError

_CURVES: dict[str, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    "nistp256": (ec.SECP256R1(), hashes.SHA256()),
    "nistp384": (ec.SECP384R1(), hashes.SHA384()),
    "nistp521": (ec.SECP521R1(), hashes.SHA512()),
}
_RSA_HASHES: dict[str, hashes.HashAlgorithm] = {
    "rsa-sha2-256": hashes.SHA256(),
    "rsa-sha2-512": hashes.SHA512(),
}
MIN_RSA_BITS = 2048


class SignatureError(SshTrustError):
    """A signature is malformed, uses a refused algorithm, or does not verify."""


def verify(key_blob: bytes, signature_blob: bytes, data: bytes) -> None:
    """Raise :class:`SignatureError` unless ``signature_blob`` is a valid signature of ``data``."""
    try:
        _verify(key_blob, signature_blob, data)
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify with the signing key") from exc
    except (WireError, ValueError) as exc:
        raise SignatureError(f"malformed key or signature: {exc}") from exc


def _verify(key_blob: bytes, signature_blob: bytes, data: bytes) -> None:
    key = Reader(key_blob, "signature key")
    key_type = key.text()
    sig = Reader(signature_blob, "signature")
    sig_type = sig.text()
    sig_bytes = sig.string()
    sig.expect_end()  # OpenSSH >= 8.x ignores no trailing data either

    if key_type == "ssh-ed25519":
        if sig_type != "ssh-ed25519":
            raise SignatureError(f"ed25519 key but {sig_type!r} signature")
        pub = key.string()
        key.expect_end()
        ed25519.Ed25519PublicKey.from_public_bytes(pub).verify(sig_bytes, data)
        return

    if key_type.startswith("ecdsa-sha2-"):
        curve_name = key.text()
        point = key.string()
        key.expect_end()
        if key_type != f"ecdsa-sha2-{curve_name}" or curve_name not in _CURVES:
            raise SignatureError(f"unsupported ECDSA key {key_type!r}/{curve_name!r}")
        if sig_type != key_type:
            raise SignatureError(f"{key_type} key but {sig_type!r} signature")
        curve, digest = _CURVES[curve_name]
        rs = Reader(sig_bytes, "ECDSA signature")
        r, s = rs.mpint(), rs.mpint()
        rs.expect_end()
        pub_ec = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        pub_ec.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
        return

    if key_type == "ssh-rsa":
        e, n = key.mpint(), key.mpint()
        key.expect_end()
        if sig_type not in _RSA_HASHES:
            raise SignatureError(f"RSA signature type {sig_type!r} refused (SHA-1 or unknown)")
        if n.bit_length() < MIN_RSA_BITS:
            raise SignatureError(f"RSA key of {n.bit_length()} bits is too small")
        modlen = (n.bit_length() + 7) // 8
        if len(sig_bytes) > modlen:
            raise SignatureError("RSA signature longer than the modulus")
        # OpenSSH accepts (and some signers emit) signatures shorter than the modulus: pad.
        sig_bytes = sig_bytes.rjust(modlen, b"\0")
        pub_rsa = rsa.RSAPublicNumbers(e, n).public_key()
        pub_rsa.verify(sig_bytes, data, padding.PKCS1v15(), _RSA_HASHES[sig_type])
        return

    raise SignatureError(f"unsupported signing key type {key_type!r}")
