"""Subject DN → principal name: Java's RFC 2253 rendering and Kafka's KIP-371 mapping rules."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from keystream.auth.ssl_principal import NoMatchingRule, SslPrincipalMapper, parse_rules, rfc2253
from keystream.configdef import ConfigError


def _dn(*rdns) -> str:
    """rfc2253 of a Name given in encoding order; an RDN is one (oid, value[, type]) or a list of them."""
    built = []
    for rdn in rdns:
        avas = rdn if isinstance(rdn, list) else [rdn]
        built.append(x509.RelativeDistinguishedName([x509.NameAttribute(*a) for a in avas]))
    return rfc2253(x509.Name(built).public_bytes())


def test_order_is_reversed_like_x500principal():
    assert _dn((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "acme"),
               (NameOID.COMMON_NAME, "alice")) == "CN=alice,O=acme,C=US"


def test_keywords_java_knows():
    dn = _dn((NameOID.DOMAIN_COMPONENT, "com"), (NameOID.STATE_OR_PROVINCE_NAME, "CA"),
             (NameOID.LOCALITY_NAME, "SF"), (NameOID.STREET_ADDRESS, "1 Main"),
             (NameOID.ORGANIZATIONAL_UNIT_NAME, "eng"), (NameOID.USER_ID, "u1"))
    assert dn == "UID=u1,OU=eng,STREET=1 Main,L=SF,ST=CA,DC=com"


def test_other_types_are_oid_and_der_hex():
    # emailAddress (IA5String "a@b") and serialNumber (PrintableString "42"): no RFC 2253 keyword.
    dn = _dn((NameOID.EMAIL_ADDRESS, "a@b"), (NameOID.SERIAL_NUMBER, "42"), (NameOID.COMMON_NAME, "x"))
    assert dn == "CN=x,2.5.4.5=#13023432,1.2.840.113549.1.9.1=#1603614062"


def test_unknown_oid_is_hex():
    assert _dn((ObjectIdentifier("1.3.6.1.4.1.99999.1"), "v")) == "1.3.6.1.4.1.99999.1=#0c0176"


def test_escaping():
    assert _dn((NameOID.COMMON_NAME, 'a,b+c=d"e\\f<g>h;i#j')) == 'CN=a\\,b\\+c\\=d\\"e\\\\f\\<g\\>h\\;i\\#j'
    assert _dn((NameOID.COMMON_NAME, " lead and trail  ")) == "CN=\\ lead and trail\\ \\ "
    assert _dn((NameOID.COMMON_NAME, "caf\u00e9")) == "CN=caf\u00e9"


def test_multi_valued_rdn():
    dn = _dn((NameOID.ORGANIZATION_NAME, "acme"), [(NameOID.COMMON_NAME, "bob"), (NameOID.USER_ID, "7")])
    assert dn == "CN=bob+UID=7,O=acme"


# --- KIP-371 -------------------------------------------------------------------------------------
def test_default_keeps_the_dn():
    assert SslPrincipalMapper("DEFAULT").name("CN=alice,O=acme") == "CN=alice,O=acme"
    assert SslPrincipalMapper(None).name("CN=a") == "CN=a"


KIP_RULES = ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,"
             "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"
             "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,"
             "DEFAULT")


@pytest.mark.parametrize(("dn", "expected"), [
    ("CN=kafka-server1,OU=ServiceUsers,O=Org,C=US", "kafka-server1"),
    ("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=SF,ST=CA,C=US", "duke@javasoft"),
    ("CN=Duke,OU=JavaSoft,O=Sun Microsystems", "duke"),
    ("OU=JavaSoft,O=Sun Microsystems,C=US", "OU=JavaSoft,O=Sun Microsystems,C=US"),
])
def test_kip371_examples(dn, expected):
    assert SslPrincipalMapper(KIP_RULES).name(dn) == expected


def test_upper_case_and_escaped_slash():
    m = SslPrincipalMapper("RULE:^CN=([^,]*),O=(.*)$/$2\\/$1/U")
    assert m.name("CN=alice,O=acme") == "ACME/ALICE"


def test_first_match_wins_and_no_match_fails():
    m = SslPrincipalMapper("RULE:^CN=(a.*)$/first/, RULE:^CN=(.*)$/second/")
    assert m.name("CN=alice") == "first"
    assert m.name("CN=bob") == "second"
    with pytest.raises(NoMatchingRule):
        m.name("O=acme")


def test_whitespace_and_empty_rules():
    rules = parse_rules("  RULE:^CN=(.*)$/$1/L ,  DEFAULT  ")
    assert len(rules) == 2


@pytest.mark.parametrize("text", [
    "DEFAULTS",
    "RULE:^CN=(.*)$/$1",           # no closing slash
    "RULE:^CN=(.*)$/$1/LX",         # unknown flag
    "RULE:^CN=(.*)$/$1/Q",
    "NOPE",
    "RULE:^CN=(.*$/$1/",            # bad regular expression
])
def test_malformed_rules_fail_start_up(text):
    with pytest.raises(ConfigError, match="ssl.principal.mapping.rules"):
        SslPrincipalMapper(text)
