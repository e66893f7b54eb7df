"""Keyed, deterministic replacements: UIDs, patient pseudonyms, date shifts, audit hashes.

Every replacement is an HMAC-SHA256 of the original value under the user's key, each use in
its own domain (a label hashed before the value), so that:

- the same original value maps to the same replacement in every file, study and run that uses
  the same key (UIDs stay consistent across studies, a patient keeps one pseudonym);
- a different key gives unrelated replacements;
- without the key, a replacement cannot be recomputed from a guessed original (no dictionary
  attack on patient IDs or dates of birth), and the audit hashes cannot be matched either.
"""

from __future__ import annotations

import hashlib
import hmac

# Minimum key length: a short key can be brute-forced, and with it every pseudonym reversed
# by trying candidate patient IDs.
MIN_KEY_BYTES = 8

# Whole days a patient's dates move back under ``retain_dates="shift"``: 1 to 10 years.
SHIFT_MIN_DAYS = 365
SHIFT_MAX_DAYS = 3652

PSEUDONYM_HEX = 16


def key_bytes(key) -> bytes:
    """The key as bytes (str is UTF-8 encoded), checked for type and length."""
    if isinstance(key, str):
        raw = key.encode("utf-8")
    elif isinstance(key, (bytes, bytearray, memoryview)):
        raw = bytes(key)
    else:
        raise TypeError(f"`key` must be bytes or str; got {type(key).__name__}")
    if len(raw) < MIN_KEY_BYTES:
        raise ValueError(
            f"`key` must be at least {MIN_KEY_BYTES} bytes (use a long random secret, e.g. "
            f"secrets.token_hex(16), and keep it apart from the data); got {len(raw)} bytes"
        )
    return raw


def mac(key: bytes, domain: str, value) -> bytes:
    """HMAC-SHA256 of ``value`` (str or bytes) under ``key`` in ``domain``."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return hmac.new(key, domain.encode("ascii") + b"\x00" + data, hashlib.sha256).digest()


def uid_for(key: bytes, uid: str) -> str:
    """The replacement of ``uid``: ``2.25.<integer>`` of a version-8 UUID made from the HMAC.

    ``2.25`` is the UID root for UUIDs (ISO/IEC 9834-8); the 128-bit integer has at most 39
    digits, so the UID has at most 44 characters (DICOM allows 64).
    """
    raw = bytearray(mac(key, "uid", uid.strip(" \x00"))[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8 (custom UUID, RFC 9562)
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return f"2.25.{int.from_bytes(raw, 'big')}"


def pseudonym(key: bytes, patient_key: str) -> str:
    """The patient pseudonym: the first 16 hex digits (64 bits) of the HMAC, upper case."""
    return mac(key, "patient", patient_key.strip()).hex()[:PSEUDONYM_HEX].upper()


def shift_days(key: bytes, patient_key: str) -> int:
    """Days (negative: into the past) by which one patient's dates move; same key, same shift."""
    n = int.from_bytes(mac(key, "date-shift", patient_key.strip())[:8], "big")
    return -(SHIFT_MIN_DAYS + n % (SHIFT_MAX_DAYS - SHIFT_MIN_DAYS + 1))


def audit_hash(key: bytes, value: bytes) -> str:
    """Keyed hash of an original value for the audit file (hex); the value is never stored."""
    return hmac.new(key, b"audit\x00" + value, hashlib.sha256).hexdigest()
