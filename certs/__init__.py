"""Keystream's PKI: a dev CA, certificates for brokers and clients, revocation and inspection.

Used by `keystream certs ...`, `keystream up` and the test fixtures. Every file holding a key is
created 0600 and replaced atomically; keys are never printed or logged.
"""

from keystream.certs.ca import init_ca
from keystream.certs.crl import REASONS, revoke
from keystream.certs.describe import describe, render
from keystream.certs.files import CertError
from keystream.certs.issue import Issued, issue, parse_sans
from keystream.certs.store import CA, DEFAULT_CA_DIR, load_ca

__all__ = ["CA", "DEFAULT_CA_DIR", "REASONS", "CertError", "Issued", "describe", "init_ca", "issue",
           "load_ca", "parse_sans", "render", "revoke"]
