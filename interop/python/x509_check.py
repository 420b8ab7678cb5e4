"""X.509 peer for EDK's certificate tests, on PyPI `cryptography`.

Reads one JSON request from stdin and prints one JSON answer:

  {"csr": "<PEM>"}    -> {"csr": {"valid": bool, "subject": "<RFC 4514>", "dns": [...],
                           "uris": [...], "signature_oid": "<dotted>"}}
  {"chain": "<PEM>"}  -> {"chain": [{"subject", "issuer", "ca", "path_len", "key_cert_sign",
                           "digital_signature", "dns", "uris", "eku", "signature_oid",
                           "issued_by_next": bool}]}

The chain is leaf first and ends at a self-signed root, which must verify itself.
"""

import json
import sys

from cryptography import x509
from cryptography.x509.oid import ExtensionOID


def ext(cert_or_csr, oid):
    try:
        return cert_or_csr.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def names(value, kind):
    return [] if value is None else value.get_values_for_type(kind)


def describe(cert, issuer):
    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    eku = ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    try:
        cert.verify_directly_issued_by(issuer)
        issued = True
    except Exception:  # noqa: BLE001 - any failure is "not issued by"
        issued = False
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "ca": bool(bc and bc.ca),
        "path_len": bc.path_length if bc else None,
        "key_cert_sign": bool(ku and ku.key_cert_sign),
        "digital_signature": bool(ku and ku.digital_signature),
        "dns": names(san, x509.DNSName),
        "uris": names(san, x509.UniformResourceIdentifier),
        "eku": [oid.dotted_string for oid in eku] if eku else [],
        "signature_oid": cert.signature_algorithm_oid.dotted_string,
        "issued_by_next": issued,
    }


def answer(request):
    if "csr" in request:
        csr = x509.load_pem_x509_csr(request["csr"].encode())
        san = ext(csr, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        return {
            "csr": {
                "valid": csr.is_signature_valid,
                "subject": csr.subject.rfc4514_string(),
                "dns": names(san, x509.DNSName),
                "uris": names(san, x509.UniformResourceIdentifier),
                "signature_oid": csr.signature_algorithm_oid.dotted_string,
            }
        }
    certs = x509.load_pem_x509_certificates(request["chain"].encode())
    issuers = certs[1:] + certs[-1:]
    return {"chain": [describe(cert, issuer) for cert, issuer in zip(certs, issuers)]}


if __name__ == "__main__":
    print(json.dumps(answer(json.load(sys.stdin))))
