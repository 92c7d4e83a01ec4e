"""Checks of what an admin types into a connection: ids, URLs and certificates.

Public API: ``is_guid``, ``is_tenant_id``, ``check_https_url``,
``load_certificate_credential`` (returns ``CertificateInfo``) and ``CredentialError``
(its ``reason`` is a stable key the Odoo layer turns into a translated sentence).

Entra ID signs a client assertion only with the certificate registered on the app; MSAL
needs the private key plus the certificate's SHA-1 thumbprint (what the Azure portal
shows, as hex).
"""

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

_GUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)
_DOMAIN = re.compile(
    r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
    re.IGNORECASE,
)
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----\s.*?-----END \1-----", re.DOTALL)


class CredentialError(ValueError):
    """A credential or setting that cannot work; ``reason`` names what is wrong."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What MSAL needs from a certificate credential, plus what admins want to see."""

    private_key_pem: str
    certificate_pem: str
    thumbprint: str
    not_after: datetime
    subject: str


def is_guid(value: str | None) -> bool:
    """True for a GUID such as an Entra application (client) id."""
    return bool(value and _GUID.match(value.strip()))


def is_tenant_id(value: str | None) -> bool:
    """True for a tenant GUID or a verified domain such as
    ``contoso.onmicrosoft.com``."""
    return bool(value and (_GUID.match(value.strip()) or _DOMAIN.match(value.strip())))


def check_https_url(value: str | None) -> str:
    """Return the URL without a trailing slash; raise CredentialError unless it is
    https."""
    parts = urlsplit((value or "").strip())
    if parts.scheme != "https" or not parts.hostname:
        raise CredentialError("not_https", value or "")
    return (value or "").strip().rstrip("/")


def normalize_thumbprint(value: str | None) -> str:
    """Upper-case hex without separators; base64 thumbprints (x5t form) are
    converted."""
    raw = re.sub(r"[\s:]", "", value or "")
    if re.fullmatch(r"[0-9a-fA-F]{40}", raw):
        return raw.upper()
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == 20:
        return decoded.hex().upper()
    raise CredentialError("bad_thumbprint", value or "")


def split_pem(text: str) -> tuple[str, str]:
    """Split pasted PEM text into (private key blocks, certificate blocks)."""
    keys, certificates = [], []
    for match in _PEM_BLOCK.finditer(text or ""):
        label = match.group(1)
        if label.endswith("PRIVATE KEY"):
            keys.append(match.group(0))
        elif label == "CERTIFICATE":
            certificates.append(match.group(0))
    return "\n".join(keys), "\n".join(certificates)


def inspect_certificate(
    certificate_pem: str, thumbprint: str | None = None
) -> CertificateInfo:
    """Read the first certificate of ``certificate_pem`` and check it against
    ``thumbprint``.

    The returned info has an empty ``private_key_pem``. Raises CredentialError with
    reason
    ``no_certificate``, ``bad_certificate``, ``bad_thumbprint`` or
    ``thumbprint_mismatch``.
    """
    _keys, cert_text = split_pem(certificate_pem)
    if not cert_text:
        raise CredentialError("no_certificate")
    first = _PEM_BLOCK.search(cert_text).group(0)
    try:
        certificate = x509.load_pem_x509_certificate(first.encode())
    except ValueError as error:
        raise CredentialError("bad_certificate", str(error)) from error
    actual = certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
    if thumbprint and normalize_thumbprint(thumbprint) != actual:
        raise CredentialError("thumbprint_mismatch", actual)
    return CertificateInfo(
        private_key_pem="",
        certificate_pem=first,
        thumbprint=actual,
        not_after=certificate.not_valid_after_utc.replace(tzinfo=None),
        subject=certificate.subject.rfc4514_string(),
    )


def load_certificate_credential(
    private_key_pem: str, certificate_pem: str, thumbprint: str | None = None
) -> CertificateInfo:
    """Check that key and certificate parse, belong together and match the thumbprint.

    Either argument may hold both blocks (a combined PEM file). An empty ``thumbprint``
    is
    taken from the certificate.

    Raises CredentialError with reason ``no_private_key``, ``bad_private_key``,
    ``key_mismatch`` or one of those of ``inspect_certificate``.
    """
    key_text, cert_in_key = split_pem(private_key_pem)
    key_in_cert, cert_text = split_pem(certificate_pem)
    key_text = key_text or key_in_cert
    if not key_text:
        raise CredentialError("no_private_key")
    info = inspect_certificate(cert_text or cert_in_key, thumbprint)
    try:
        key = serialization.load_pem_private_key(key_text.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise CredentialError("bad_private_key", str(error)) from error
    certificate = x509.load_pem_x509_certificate(info.certificate_pem.encode())
    der, spki = (
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    if key.public_key().public_bytes(
        der, spki
    ) != certificate.public_key().public_bytes(der, spki):
        raise CredentialError("key_mismatch")
    return CertificateInfo(
        private_key_pem=key_text,
        certificate_pem=info.certificate_pem,
        thumbprint=info.thumbprint,
        not_after=info.not_after,
        subject=info.subject,
    )
