"""Key tokens: how they are made, recognised and stored.

A stored key's token is ``wk_<key id>_<secret>``: the key id (16 hex digits) finds its row, the
secret is 32 random bytes (256 bits, URL-safe base64). Only the SHA-256 digest of the whole token
is stored. A slow password hash (bcrypt, Argon2) exists to make guessing low-entropy passwords
expensive; a 256-bit random token cannot be guessed, so a plain cryptographic digest is as safe,
costs microseconds per request, and is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_PREFIX = "wk_"
_TOKEN = re.compile(r"wk_(?P<key_id>[0-9a-f]{16})_[A-Za-z0-9_-]{43}")


def new_key_id() -> str:
    return secrets.token_hex(8)


def new_token(key_id: str) -> str:
    return f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(token: str) -> str | None:
    """The key id a token names, or ``None`` if it is not shaped like a stored key's token."""
    match = _TOKEN.fullmatch(token)
    return match["key_id"] if match else None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(token).encode(), stored_digest.encode())
