"""Better Auth's password hashing (scrypt, N=16384 r=16 p=1, 64-byte key, stored as "<salt hex>:<key hex>")."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

_N, _R, _P, _KEY_LENGTH = 16384, 16, 1, 64
_MAXMEM = 64 * 1024 * 1024


def _key(password: str, salt: str) -> bytes:
    normalized = unicodedata.normalize("NFKC", password).encode("utf-8")
    return hashlib.scrypt(normalized, salt=salt.encode("utf-8"), n=_N, r=_R, p=_P, dklen=_KEY_LENGTH, maxmem=_MAXMEM)


def hash_password(password: str) -> str:
    salt = secrets.token_hex(16)
    return f"{salt}:{_key(password, salt).hex()}"


def verify_password(stored: str, password: str) -> bool:
    salt, _, key = stored.partition(":")
    if not salt or not key:
        return False
    return hmac.compare_digest(_key(password, salt).hex(), key)
