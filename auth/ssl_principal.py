"""Certificate subject → Kafka principal name, the way Apache Kafka derives it.

Kafka takes `X500Principal.getName()` (RFC 2253, as Java prints it) and runs it through
`ssl.principal.mapping.rules` (KIP-371). ACLs and `super.users` written for a Kafka cluster name
principals in exactly that form, so both the DN rendering and the rule semantics follow Java's:
- RDNs last-to-first, multi-valued RDNs joined with `+`, AVAs in their encoded order;
- keywords only for CN, C, L, ST, O, OU, STREET, DC, UID; any other type as `OID=#<DER hex>`;
- `,=+<>#;"\\` escaped with a backslash anywhere, NUL as `\\00`, leading/trailing spaces escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keystream.configdef import ConfigError

_KEYWORDS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# ASN.1 string tags Java renders as text; the codec to read their content.
_STRING_TAGS = {12: "utf-8", 19: "latin-1", 22: "latin-1", 20: "latin-1", 27: "latin-1", 30: "utf-16-be"}
_ESCAPED = set(',=+<>#;"\\')


class CertificateNameError(ValueError):
    """A subject that is not well-formed DER (the handshake is refused)."""


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at `pos`; every length is bounded."""
    if pos + 2 > len(der):
        raise CertificateNameError("truncated DER")
    tag, first = der[pos], der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(der):
            raise CertificateNameError("bad DER length")
        length = int.from_bytes(der[pos:pos + n], "big")
        pos += n
    if pos + length > len(der):
        raise CertificateNameError("DER length beyond its container")
    return tag, pos, pos + length


def _oid(content: bytes) -> str:
    if not content:
        raise CertificateNameError("empty OID")
    first, arcs, value = content[0], [], 0
    arcs += [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    for b in content[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(map(str, arcs))


def _escape(text: str) -> str:
    out = []
    for c in text:
        if c in _ESCAPED:
            out.append("\\" + c)
        elif c == "\0":
            out.append("\\00")
        else:
            out.append(c)
    s = "".join(out)
    lead = len(s) - len(s.lstrip(" \r"))
    trail = len(s) - len(s.rstrip(" \r"))
    if lead == len(s):
        return "".join("\\" + c for c in s)
    head = "".join("\\" + c for c in s[:lead])
    tail = "".join("\\" + c for c in s[len(s) - trail:]) if trail else ""
    return head + s[lead:len(s) - trail] + tail


def _ava(der: bytes, start: int, end: int) -> str:
    tag, s, e = _tlv(der, start)
    if tag != 0x30:
        raise CertificateNameError("AttributeTypeAndValue is not a SEQUENCE")
    otag, os_, oe = _tlv(der, s)
    if otag != 0x06:
        raise CertificateNameError("attribute type is not an OID")
    oid = _oid(der[os_:oe])
    vtag, vs, ve = _tlv(der, oe)
    keyword = _KEYWORDS.get(oid)
    if keyword is not None and vtag in _STRING_TAGS:
        try:
            return f"{keyword}={_escape(der[vs:ve].decode(_STRING_TAGS[vtag]))}"
        except UnicodeDecodeError:
            pass
    return f"{keyword or oid}=#{der[oe:ve].hex()}"


def rfc2253(name_der: bytes) -> str:
    """The RFC 2253 string Java's `X500Principal.getName()` gives for a DER-encoded Name."""
    tag, start, end = _tlv(name_der, 0)
    if tag != 0x30:
        raise CertificateNameError("Name is not a SEQUENCE")
    rdns, pos = [], start
    while pos < end:
        stag, s, e = _tlv(name_der, pos)
        if stag != 0x31:
            raise CertificateNameError("RDN is not a SET")
        avas, p = [], s
        while p < e:
            _, _, ae = _tlv(name_der, p)
            avas.append(_ava(name_der, p, ae))
            p = ae
        rdns.append("+".join(avas))
        pos = e
    return ",".join(reversed(rdns))


def subject_dn(cert_der: bytes) -> str:
    """RFC 2253 subject of a DER certificate (parsed by `cryptography`, rendered as Java does)."""
    from cryptography import x509  # noqa: PLC0415  (only TLS listeners need it)

    try:
        cert = x509.load_der_x509_certificate(cert_der)
    except ValueError as exc:
        raise CertificateNameError(str(exc)) from None
    return rfc2253(cert.subject.public_bytes())


# --- KIP-371 mapping rules -----------------------------------------------------------------------
_RULE = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)"
_RULE_PARSER = re.compile(_RULE)
_RULE_SPLITTER = re.compile(r"\s*(" + _RULE + r")\s*(,\s*|$)")
_JAVA_GROUP = re.compile(r"\$(?:\{([A-Za-z][A-Za-z0-9]*)\}|(\d))|\\(.)", re.S)


class NoMatchingRule(ValueError):
    """No rule maps this DN (Kafka then fails authentication)."""


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern | None  # None: DEFAULT
    replacement: str = ""
    lower: bool = False
    upper: bool = False

    def apply(self, dn: str) -> str | None:
        if self.pattern is None:
            return dn
        if not self.pattern.fullmatch(dn):
            return None
        result = self.pattern.sub(lambda m: _java_replacement(self.replacement, m), dn)
        if self.lower:
            return result.lower()
        if self.upper:
            return result.upper()
        return result


def _java_replacement(replacement: str, m: re.Match) -> str:
    """Java's Matcher replacement syntax: `$n`, `${name}`, and `\\x` for a literal x."""
    def one(g: re.Match) -> str:
        if g.group(3) is not None:
            return g.group(3)
        ref = g.group(1) or int(g.group(2))
        return m.group(ref) or ""
    return _JAVA_GROUP.sub(one, replacement)


def parse_rules(text: str | None, prop: str = "ssl.principal.mapping.rules") -> list[Rule]:
    """Splits and parses the property as Kafka's SslPrincipalMapper does; malformed → ConfigError."""
    if text is None:
        return [Rule(None)]
    parts = [m.group(1) for m in _RULE_SPLITTER.finditer(text.strip())]
    rules = []
    for part in parts:
        m = _RULE_PARSER.match(part)
        if m is None or m.end() != len(part):
            rest = part[m.end():] if m else part
            raise ConfigError(f"Invalid value '{text}' for configuration {prop}: invalid rule `{part}`,"
                              f" unmatched substring: `{rest}`")
        if m.group(1):
            rules.append(Rule(None))
        elif m.group(2) is not None:
            try:
                pattern = re.compile(m.group(2))
            except re.error as exc:
                raise ConfigError(f"Invalid value '{text}' for configuration {prop}: bad pattern"
                                  f" `{m.group(2)}`: {exc}") from None
            flag = m.group(6)
            rules.append(Rule(pattern, m.group(4), flag == "L", flag == "U"))
    return rules


class SslPrincipalMapper:
    """First matching rule wins; no match at all is an authentication failure, as in Kafka."""

    def __init__(self, rules_text: str | None = "DEFAULT"):
        self.rules = parse_rules(rules_text)

    def name(self, dn: str) -> str:
        for rule in self.rules:
            result = rule.apply(dn)
            if result is not None:
                return result
        raise NoMatchingRule(f"no ssl.principal.mapping.rules entry applies to {dn}")
