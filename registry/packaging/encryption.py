"""AES-256-GCM encryption of packages, with the key id in an authenticated header.

File layout (all integers big-endian):

    magic   8 bytes   b"RGPKENC1"
    hlen    4 bytes   length of the header
    header  hlen      JSON: {"alg": "AES-256-GCM", "key_id": ..., "nonce": hex, "length": n}
    body    n bytes   ciphertext followed by the 16-byte GCM tag

The magic, length and header are the GCM associated data, so editing the key id or the nonce is
detected like editing the body. The key (32 bytes) comes from an environment variable (hex or
base64) or a key file (raw 32 bytes, hex or base64), never from the card. The key id is the first
16 hex digits of SHA-256 over the key: it names the key without revealing it. The nonce is derived
from the key and the plaintext (HMAC), so the same package and key give the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import struct
from pathlib import Path

from registry.core.errors import ConversionError, UsageError, missing_dependency

MAGIC = b"RGPKENC1"
ALG = "AES-256-GCM"
TAG_BYTES = 16
_BLOCK = 1 << 20


class PackageKeyError(ConversionError):
    """The key is missing, malformed, or not the one the package was encrypted with."""


class PackageIntegrityError(ConversionError):
    """An encrypted package was altered or cut short."""


def parse_key(text: bytes | str, where: str) -> bytes:
    """A 32-byte key from raw bytes, hex or base64.

    Raises:
        PackageKeyError: not 32 bytes in any of those forms.
    """
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) == 32:
        return raw
    s = raw.strip()
    for decode in (binascii.unhexlify, base64.b64decode):
        try:
            key = decode(s)
        except (binascii.Error, ValueError):
            continue
        if len(key) == 32:
            return key
    raise PackageKeyError(
        f"{where} is not a 256-bit key",
        "give 32 bytes as 64 hex digits or base64, e.g. "
        "python -c 'import os; print(os.urandom(32).hex())'",
    )


def load_key(key_env: str | None = None, key_file: Path | None = None) -> bytes | None:
    """The key from a key file or an environment variable (None when neither is given).

    Raises:
        UsageError: both given, or the variable is unset / the file missing.
        PackageKeyError: the value is not a 256-bit key.
    """
    if key_env and key_file:
        raise UsageError("give the key either by --key-env or by --key-file, not both")
    if key_file:
        if not key_file.is_file():
            raise UsageError(f"key file {key_file} does not exist")
        return parse_key(key_file.read_bytes(), f"key file {key_file}")
    if key_env:
        value = os.environ.get(key_env)
        if not value:
            raise UsageError(
                f"environment variable {key_env} is not set",
                f"export {key_env}=<64 hex digits> (a secret of the release workflow)",
            )
        return parse_key(value, f"environment variable {key_env}")
    return None


def key_id(key: bytes) -> str:
    """A public name for a key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def _aesgcm(key: bytes):
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as e:
        raise missing_dependency("cryptography", "package") from e
    return AESGCM(key)


def encrypt(plaintext: bytes, key: bytes) -> bytes:
    """Encrypt bytes into the layout above."""
    nonce = hmac.new(
        key, b"registry-package-nonce" + hashlib.sha256(plaintext).digest(), hashlib.sha256
    ).digest()[:12]
    header = json.dumps(
        {
            "alg": ALG,
            "key_id": key_id(key),
            "nonce": nonce.hex(),
            "length": len(plaintext) + TAG_BYTES,
        },
        sort_keys=True,
    ).encode()
    aad = MAGIC + struct.pack(">I", len(header)) + header
    return aad + _aesgcm(key).encrypt(nonce, plaintext, aad)


def encrypt_file(src, out, key: bytes) -> str:
    """Encrypt the file `src` into the file `out`, a block at a time: the same bytes `encrypt`
    makes of its content, without holding it in memory. Returns the SHA-256 of what was written.
    """
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError as e:
        raise missing_dependency("cryptography", "package") from e
    plain, length = hashlib.sha256(), 0
    while block := src.read(_BLOCK):
        plain.update(block)
        length += len(block)
    nonce = hmac.new(key, b"registry-package-nonce" + plain.digest(), hashlib.sha256).digest()[:12]
    header = json.dumps(
        {"alg": ALG, "key_id": key_id(key), "nonce": nonce.hex(), "length": length + TAG_BYTES},
        sort_keys=True,
    ).encode()
    aad = MAGIC + struct.pack(">I", len(header)) + header
    written = hashlib.sha256()

    def write(data: bytes) -> None:
        written.update(data)
        out.write(data)

    encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    write(aad)
    src.seek(0)
    while block := src.read(_BLOCK):
        write(encryptor.update(block))
    write(encryptor.finalize() + encryptor.tag)
    return written.hexdigest()


def is_encrypted(data: bytes) -> bool:
    """Whether the bytes start like an encrypted package."""
    return data[: len(MAGIC)] == MAGIC


def read_header(data: bytes, where: str) -> tuple[dict, bytes, bytes]:
    """(header, associated data, body) of an encrypted package.

    Raises:
        PackageIntegrityError: the file is cut short or its header is unreadable.
    """
    if len(data) < len(MAGIC) + 4:
        raise PackageIntegrityError(
            f"{where}: truncated (only {len(data)} bytes)", "download the package again"
        )
    (hlen,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if hlen > 4096 or len(data) < start + hlen:
        raise PackageIntegrityError(
            f"{where}: truncated or damaged header", "download the package again"
        )
    try:
        header = json.loads(data[start : start + hlen])
        length = int(header["length"])
        bytes.fromhex(header["nonce"])
        header["key_id"]
    except (
        ValueError,
        KeyError,
        TypeError,
        RecursionError,
    ) as e:  # 4 KiB of '[' nests past the stack
        raise PackageIntegrityError(
            f"{where}: damaged header ({e})", "download the package again"
        ) from None
    body = data[start + hlen :]
    if len(body) < length:
        raise PackageIntegrityError(
            f"{where}: truncated: {len(body)} of {length} encrypted bytes present",
            "download the package again; compare it with SHA256SUMS",
        )
    if len(body) > length:
        raise PackageIntegrityError(
            f"{where}: {len(body) - length} unexpected bytes after the end",
            "download the package again; compare it with SHA256SUMS",
        )
    return header, data[: start + hlen], body


def decrypt(data: bytes, key: bytes | None, where: str) -> bytes:
    """Decrypt in memory.

    Raises:
        PackageKeyError: no key, or a key other than the one the header names.
        PackageIntegrityError: truncated, or any byte changed (the GCM tag does not verify).
    """
    header, aad, body = read_header(data, where)
    if header.get("alg") != ALG:
        raise PackageIntegrityError(f"{where}: unknown algorithm {header.get('alg')!r}")
    if key is None:
        raise PackageKeyError(
            f"{where} is encrypted (key id {header['key_id']}) and no key was given",
            "pass --key-env VAR or --key-file PATH",
        )
    if key_id(key) != header["key_id"]:
        raise PackageKeyError(
            f"{where} was encrypted with key id {header['key_id']}; the key given has id "
            f"{key_id(key)}",
            "use the key the package was built with",
        )
    from cryptography.exceptions import InvalidTag

    try:
        return _aesgcm(key).decrypt(bytes.fromhex(header["nonce"]), body, aad)
    except InvalidTag as e:
        raise PackageIntegrityError(
            f"{where}: authentication failed: the file was altered",
            "do not use it; download the package again",
        ) from e
