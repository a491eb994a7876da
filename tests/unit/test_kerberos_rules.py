"""sasl.kerberos.principal.to.local.rules: the facts come from Apache Kafka's KerberosNameTest and
KerberosRuleTest (expected short names, rejected rules), plus DEFAULT's realm check and the errors
that must refuse a login."""

from __future__ import annotations

import pytest

from keystream.auth.kerberos_rules import (
    KerberosRuleError,
    KerberosShortNamer,
    parse_rules,
    replace_parameters,
)
from keystream.config import Config
from keystream.configdef import ConfigError

APP_RULES = r"RULE:[1:$1](App\..*)s/App\.(.*)/$1/g, RULE:[2:$1](App\..*)s/App\.(.*)/$1/g, DEFAULT"


def short(rules: str | None, principal: str, realm: str = "REALM.COM") -> str:
    return KerberosShortNamer(rules, realm).short_name(principal)


@pytest.mark.parametrize("principal, expected", [
    ("App.service-name/example.com@REALM.COM", "service-name"),
    ("App.service-name@REALM.COM", "service-name"),
    ("user/host@REALM.COM", "user"),
])
def test_kafka_parse_cases(principal, expected):
    assert short(APP_RULES, principal) == expected


CASE_RULES = ["RULE:[1:$1]/{f}", "RULE:[2:$1](Test.*)s/ABC///{f}", "RULE:[2:$1](ABC.*)s/ABC/XYZ/g/{f}",
              r"RULE:[2:$1](App\..*)s/App\.(.*)/$1/g/{f}", "RULE:[2:$1]/{f}", "DEFAULT"]


@pytest.mark.parametrize("flag, principal, expected", [
    ("L", "User@REALM.COM", "user"),
    ("L", "TestABC/host@FOO.COM", "test"),
    ("L", "ABC_User_ABC/host@FOO.COM", "xyz_user_xyz"),
    ("L", "App.SERVICE-name/example.com@REALM.COM", "service-name"),
    ("L", "User/root@REALM.COM", "user"),
    ("U", "User@REALM.COM", "USER"),
    ("U", "TestABC/host@FOO.COM", "TEST"),
    ("U", "ABC_User_ABC/host@FOO.COM", "XYZ_USER_XYZ"),
    ("U", "App.SERVICE-name/example.com@REALM.COM", "SERVICE-NAME"),
    ("U", "User/root@REALM.COM", "USER"),
])
def test_kafka_case_conversion(flag, principal, expected):
    rules = ",".join(r.format(f=flag) for r in CASE_RULES)
    assert short(rules, principal) == expected


@pytest.mark.parametrize("rule", [
    "default", "DEFAUL", "DEFAULT/L", "DEFAULT/g", "rule:[1:$1]", "rule:[1:$1]/L/U", "rule:[1:$1]/U/L",
    "rule:[1:$1]/LU", "RULE:[1:$1/L", "RULE:[1:$1]/l", "RULE:[2:$1](ABC.*)s/ABC/XYZ/L/g",
    "RULE:[1:$1]/L/U", "RULE:[:$1]",
    # Stricter than Kafka, which fails every login reaching these instead:
    "RULE:[1:$2]", "RULE:[2:$]", r"RULE:[1:$1](a(b)",
])
def test_invalid_rules_are_config_errors(rule):
    with pytest.raises(ConfigError, match="sasl.kerberos.principal.to.local.rules"):
        parse_rules(rule)


def test_replace_parameters_kafka_cases():
    many = ["too", "many", "parameters", "are", "ok"]
    assert replace_parameters("", []) == ""
    assert replace_parameters("hello", []) == "hello"
    assert replace_parameters("", many) == ""
    assert replace_parameters("hello", many) == "hello"
    assert replace_parameters("hello $0", many) == "hello too"
    assert replace_parameters("hello $0", ["no recursion $1"]) == "hello no recursion $1"
    with pytest.raises(KerberosRuleError):
        replace_parameters("$0", [])
    with pytest.raises(KerberosRuleError):
        replace_parameters("hello $a", ["does not matter"])


def test_default_strips_only_the_default_realm():
    assert short("DEFAULT", "alice@REALM.COM") == "alice"
    assert short("DEFAULT", "kafka/broker1.example.com@REALM.COM") == "kafka"
    with pytest.raises(KerberosRuleError, match="No rules apply"):
        short("DEFAULT", "alice@EVIL.COM")
    assert short(None, "alice@REALM.COM") == "alice"  # unset means DEFAULT


def test_realm_placeholder_and_java_replacement():
    rules = r"RULE:[1:$1@$0](.*@PARTNER\.COM)s/@.*//, RULE:[2:$1;$2](^.*;admin$)s/;admin$//, DEFAULT"
    assert short(rules, "carol@PARTNER.COM") == "carol"
    assert short(rules, "joe/admin@REALM.COM") == "joe"
    with pytest.raises(KerberosRuleError):
        short(rules, "carol@OTHER.COM")
    # Java's $n takes the longest group number that exists: with one group, "$12" is group 1 then "2".
    assert short(r"RULE:[1:$1]s/(x)/$12/", "x@REALM.COM") == "x2"
    assert short(r"RULE:[1:$1]s/a/\$/g", "aa@REALM.COM") == "$$"
    assert short(r"RULE:[1:$1]s/a/b/", "aa@REALM.COM") == "ba"  # without g: the first match only


def test_first_rule_that_applies_wins_and_errors_do_not_fall_through():
    assert short("RULE:[1:$1](bob)s/bob/robert/, DEFAULT", "bob@REALM.COM") == "robert"
    assert short("RULE:[1:$1](bob)s/bob/robert/, DEFAULT", "alice@REALM.COM") == "alice"
    with pytest.raises(KerberosRuleError, match="Non-simple name"):
        short("RULE:[2:$1/$2], DEFAULT", "svc/host@REALM.COM")
    with pytest.raises(KerberosRuleError, match="Non-simple name"):
        short("RULE:[1:$1@$0]", "alice@REALM.COM")


def test_names_kafka_cannot_parse_are_refused_and_simple_names_pass():
    with pytest.raises(KerberosRuleError, match="Malformed"):
        short("DEFAULT", "a/b/c@REALM.COM")
    with pytest.raises(KerberosRuleError, match="Malformed"):
        short("DEFAULT", "a@b@REALM.COM")
    assert short("DEFAULT", "alice") == "alice"


def test_rules_separated_by_commas_or_newlines():
    assert short("RULE:[2:$2]\n  DEFAULT", "svc/host@REALM.COM") == "host"
    assert short("RULE:[1:$1](nobody) ,\nDEFAULT", "alice@REALM.COM") == "alice"
    for empty in ("", " ", "DEFAULT,,DEFAULT", "DEFAULT,"):
        with pytest.raises(ConfigError):
            parse_rules(empty)


def test_config_property_is_checked_at_load():
    assert Config({})["sasl.kerberos.principal.to.local.rules"] == "DEFAULT"
    assert Config({"sasl.kerberos.principal.to.local.rules": APP_RULES})["sasl.kerberos.principal.to.local.rules"]
    with pytest.raises(ConfigError, match="sasl.kerberos.principal.to.local.rules.*DEFAULT/L"):
        Config({"sasl.kerberos.principal.to.local.rules": "DEFAULT/L"})
