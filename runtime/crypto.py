"""Reasoning traces at rest: AES-256-GCM authenticated encryption (pure, no I/O).

File format: ``b"CRE1"`` + 12-byte nonce + ciphertext-with-tag, with the run id as
associated data, so a file moved to another run, or a single changed byte, fails to
decrypt loudly (``TraceDecryptError``) instead of yielding garbage.

Keys: 32 random bytes. A key given in an environment variable may be 64 hex digits, the
urlsafe base64 of 32 bytes, or any passphrase (stretched with HKDF-SHA256).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConductorError

__all__ = ["MAGIC", "TraceDecryptError", "decrypt", "encrypt", "key_from_text", "new_key"]

MAGIC = b"CRE1"


class TraceDecryptError(ConductorError):
    """The trace file is not ours, was changed, or the key is wrong."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def key_from_text(text: str) -> bytes:
    """A 32-byte key from an env var value (hex, base64 or a passphrase)."""
    text = text.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if len(raw) == 32:
            return raw
    except (binascii.Error, ValueError):
        pass
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"conductor-reasoning",
                info=b"reasoning.enc").derive(text.encode())


def encrypt(key: bytes, plaintext: bytes, *, context: str) -> bytes:
    nonce = os.urandom(12)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def decrypt(key: bytes, blob: bytes, *, context: str) -> bytes:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 12 + 16:
        raise TraceDecryptError("not a conductor reasoning trace file (bad header)")
    nonce = blob[4:16]
    try:
        return AESGCM(key).decrypt(nonce, blob[16:], context.encode())
    except InvalidTag as exc:
        raise TraceDecryptError(
            "reasoning trace failed authentication: wrong key, wrong run, or the file was modified"
        ) from exc
