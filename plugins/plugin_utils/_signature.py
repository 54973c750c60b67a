# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Detached signatures over release tarballs, checked on the controller with cryptography.

Ed25519 and Ed448 sign the file itself. ECDSA signs a digest of it that matches the curve (P-256: SHA-256,
P-384: SHA-384, P-521: SHA-512), DER-encoded as `openssl dgst -sign` writes it. RSA signs its SHA-256 digest with
PKCS#1 v1.5 or PSS. The signature file holds the raw signature bytes or their base64 text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import sys

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.backends import default_backend
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
except ImportError as exc:
    CRYPTOGRAPHY_IMPORT_ERROR = exc
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

MINIMUM_CRYPTOGRAPHY = "3.0"
BLOCK_SIZE = 1 << 20
BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s]+$")


class SignatureError(Exception):
    pass


def require_cryptography():
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        raise SignatureError(
            "cryptography >= {0} is required for signature: it is checked on the controller, whose Python ({1}) cannot "
            "import it ({2}). Install it there, for example `{1} -m pip install 'cryptography>={0}'`.".format(
                MINIMUM_CRYPTOGRAPHY, sys.executable, CRYPTOGRAPHY_IMPORT_ERROR))


def is_inline_key(text):
    return text.lstrip().startswith("-----BEGIN")


def load_public_key(data, source):
    """A public key from PEM (SubjectPublicKeyInfo or PKCS#1 RSA) or DER bytes; source names it in errors."""
    require_cryptography()
    loaders = [serialization.load_pem_public_key] if data.lstrip().startswith(b"-----BEGIN") else [serialization.load_der_public_key]
    try:
        key = loaders[0](data, backend=default_backend())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError("The public key {0} cannot be read: {1}. Give a PEM public key (-----BEGIN PUBLIC KEY-----).".format(source, exc))
    if not isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey, ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise SignatureError("The public key {0} is a {1}; use an Ed25519, ECDSA or RSA key.".format(source, type(key).__name__))
    return key


def describe_key(key):
    """'Ed25519', 'ECDSA P-256', 'RSA 2048' and the key's SHA256 fingerprint (of its SubjectPublicKeyInfo)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        kind = "Ed25519"
    elif isinstance(key, ed448.Ed448PublicKey):
        kind = "Ed448"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind = "ECDSA {0}".format({"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(key.curve.name, key.curve.name))
    else:
        kind = "RSA {0}".format(key.key_size)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = base64.b64encode(hashlib.sha256(der).digest()).decode("ascii").rstrip("=")
    return "{0}, SHA256:{1}".format(kind, fingerprint)


def read_signature(data, source):
    """The signature bytes from a signature file's content: raw, or base64 text."""
    if not data:
        raise SignatureError("The signature file {0} is empty.".format(source))
    if BASE64_TEXT.match(data):
        try:
            return base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            pass
    return data


def _digest(path, algorithm):
    digest = hashlib.new(algorithm.name)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_SIZE), b""):
            digest.update(block)
    return digest.digest()


def _ecdsa_hash(key):
    size = key.curve.key_size
    return hashes.SHA512() if size > 384 else hashes.SHA384() if size > 256 else hashes.SHA256()


def _verifies(key, signature, path):
    """True when the signature verifies the file at path with key."""
    try:
        if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            with open(path, "rb") as handle:
                key.verify(signature, handle.read())  # EdDSA signs the message itself, not a digest
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            algorithm = _ecdsa_hash(key)
            key.verify(signature, _digest(path, algorithm), ec.ECDSA(Prehashed(algorithm)))
            return True
    except InvalidSignature:
        return False
    digest = _digest(path, hashes.SHA256())
    salt_lengths = [getattr(padding.PSS, "AUTO", padding.PSS.MAX_LENGTH), padding.PSS.MAX_LENGTH, 32]
    paddings = [padding.PKCS1v15()] + [padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt) for salt in salt_lengths]
    for pad in paddings:
        try:
            key.verify(signature, digest, pad, Prehashed(hashes.SHA256()))
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def verify_file(path, label, signature_data, signature_source, key_data, key_source, sha256=None):
    """Check the detached signature over the file at path; label names the file in messages.

    Returns a description of the key that signed it; raises SignatureError when it does not verify.
    """
    require_cryptography()
    key = load_public_key(key_data, key_source)
    signature = read_signature(signature_data, signature_source)
    key_text = describe_key(key)
    try:
        ok = _verifies(key, signature, path)
    except OSError as exc:
        raise SignatureError("Cannot read {0} to check its signature: {1}".format(label, exc.strerror or exc))
    if not ok:
        raise SignatureError(
            "The signature {0} does not verify {1}{2} with the public key {3} ({4}): the tarball changed after it was "
            "signed, the signature belongs to another file, or another key signed it. Nothing was sent to the host.".format(
                signature_source, label, " (sha256 {0})".format(sha256) if sha256 else "", key_source, key_text))
    return key_text
