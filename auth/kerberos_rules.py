"""Kerberos principal → short user name, by Kafka's `sasl.kerberos.principal.to.local.rules`.

ACLs and `super.users` written for a Kafka cluster name Kerberos users by the short name Kafka's
KerberosShortNamer produces, so the grammar and semantics follow Kafka's (not Hadoop's or MIT's):
- `service/host@REALM` gives the parameters $0=REALM, $1=service, $2=host;
- `RULE:[n:format](match)s/from/to/g/L` applies only to names of n components: `$k` in `format`
  are replaced, the result must match `match` entirely, then `from` is replaced by `to` (Java's
  replacement syntax, `$1` is a group of `from`) once, or everywhere with `g`; `/L` or `/U`
  lower- or upper-cases the result;
- `DEFAULT` maps a name of the default realm to its first component and nothing else;
- a result holding `/` or `@` is an error, and a name that no rule maps is refused.
Rules are separated by commas (Kafka's list syntax) or newlines (as in Hadoop's files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keystream.configdef import ConfigError, Validator

PROP = "sasl.kerberos.principal.to.local.rules"
# Kafka's KerberosShortNamer.RULE_PARSER; `[0-9]` because Java's \d is ASCII only.
_RULE_PARSER = re.compile(
    r"((DEFAULT)|((RULE:\[([0-9]*):([^\]]*)](\(([^)]*)\))?(s/([^/]*)/([^/]*)/(g)?)?/?(L|U)?)))"
)
_NAME = re.compile(r"([^/@]*)(/([^/@]*))?@([^/@]*)")  # Kafka's KerberosName.NAME_PARSER
_PARAMETER = re.compile(r"\$([0-9]*)")
_JAVA_REPLACEMENT = re.compile(r"\$(\{[^}]*\}?|[0-9]*)|\\(.?)", re.S)
_NON_SIMPLE = re.compile(r"[/@]")
_SEPARATOR = re.compile(r"\s*[,\n]\s*")


class KerberosRuleError(ValueError):
    """No rule maps the principal, or a rule produced no usable name: authentication fails."""


def replace_parameters(fmt: str, params: list[str]) -> str:
    """`$k` in a rule's format → params[k] (Kafka's replaceParameters; not recursive)."""
    out, pos = [], 0
    for m in _PARAMETER.finditer(fmt):
        out.append(fmt[pos:m.start()])
        if not m.group(1):
            raise KerberosRuleError(f"bad format in username mapping in {fmt!r}")
        num = int(m.group(1))
        if num >= len(params):
            raise KerberosRuleError(
                f"index {num} from {fmt} is outside of the valid range 0 to {len(params) - 1}")
        out.append(params[num])
        pos = m.end()
    out.append(fmt[pos:])
    return "".join(out)


def _java_replacement(to: str, m: re.Match) -> str:
    """Java's Matcher replacement: `$n` (longest group number that exists), `${name}`, `\\x` → x."""
    def one(r: re.Match) -> str:
        if r.group(2) is not None:
            if not r.group(2):
                raise KerberosRuleError(f"character to be escaped is missing in {to!r}")
            return r.group(2)
        ref = r.group(1)
        if ref.startswith("{"):
            if not ref.endswith("}") or len(ref) < 3:
                raise KerberosRuleError(f"named capturing group is missing trailing '}}' in {to!r}")
            return m.group(ref[1:-1]) or ""
        if not ref:
            raise KerberosRuleError(f"illegal group reference in {to!r}")
        digits = 1
        while digits < len(ref) and int(ref[:digits + 1]) <= m.re.groups:
            digits += 1
        num = int(ref[:digits])
        if num > m.re.groups:
            raise KerberosRuleError(f"no group {num} in {to!r}")
        return (m.group(num) or "") + ref[digits:]
    try:
        return _JAVA_REPLACEMENT.sub(one, to)
    except IndexError as exc:  # ${name} of a group that does not exist
        raise KerberosRuleError(f"bad group reference in {to!r}: {exc}") from None


@dataclass(frozen=True)
class KerberosRule:
    """One parsed rule; `components` is None for DEFAULT."""

    text: str
    components: int | None = None
    fmt: str = ""
    match: re.Pattern | None = None
    sub_from: re.Pattern | None = None
    sub_to: str = ""
    repeat: bool = False
    lower: bool = False
    upper: bool = False

    def apply(self, params: list[str], default_realm: str) -> str | None:
        """The short name, or None when the rule does not apply; `params` = [realm, c1, (c2)]."""
        result = None
        if self.components is None:
            if params[0] == default_realm:
                result = params[1]
        elif len(params) - 1 == self.components:
            base = replace_parameters(self.fmt, params)
            if self.match is None or self.match.fullmatch(base):
                result = base
                if self.sub_from is not None:
                    result = self.sub_from.sub(lambda m: _java_replacement(self.sub_to, m), base,
                                               count=0 if self.repeat else 1)
        if result is not None and _NON_SIMPLE.search(result):
            raise KerberosRuleError(f"Non-simple name {result} after auth_to_local rule {self.text}")
        if result is not None and self.lower:
            return result.lower()
        if result is not None and self.upper:
            return result.upper()
        return result


def _compile(pattern: str, rule: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"Invalid value for configuration {PROP}: rule `{rule}` has a bad pattern"
                          f" `{pattern}`: {exc}") from None


def parse_rule(rule: str) -> KerberosRule:
    """One rule as Kafka's parser reads it (the whole text must match); malformed → ConfigError."""
    m = _RULE_PARSER.match(rule)
    if m is None:
        raise ConfigError(f"Invalid value for configuration {PROP}: invalid rule `{rule}`")
    if m.end() != len(rule):
        raise ConfigError(f"Invalid value for configuration {PROP}: invalid rule `{rule}`,"
                          f" unmatched substring: `{rule[m.end():]}`")
    if m.group(2):
        return KerberosRule(rule)
    if not m.group(5):
        raise ConfigError(f"Invalid value for configuration {PROP}: rule `{rule}` lacks its number of components")
    components, fmt = int(m.group(5)), m.group(6)
    # Kafka finds these only when a principal reaches the rule and then refuses every such
    # principal; a rule that can never succeed is better refused at start-up.
    for p in _PARAMETER.finditer(fmt):
        if not p.group(1) or int(p.group(1)) > components:
            raise ConfigError(f"Invalid value for configuration {PROP}: rule `{rule}` uses `{p.group(0)}`,"
                              f" but a name of {components} components has only $0 to ${components}")
    return KerberosRule(
        rule, components, fmt,
        match=None if m.group(8) is None else _compile(m.group(8), rule),
        sub_from=None if m.group(10) is None else _compile(m.group(10), rule),
        sub_to=m.group(11) or "", repeat=m.group(12) == "g",
        lower=m.group(13) == "L", upper=m.group(13) == "U",
    )


def parse_rules(text: str | None) -> list[KerberosRule]:
    """The property's rules in order; None means `DEFAULT`, and an empty list is refused."""
    if text is None:
        return [KerberosRule("DEFAULT")]
    parts = _SEPARATOR.split(text.strip())
    if parts == [""]:
        raise ConfigError(f"Invalid value '' for configuration {PROP}: at least one rule is needed")
    if "" in parts:
        raise ConfigError(f"Invalid value '{text}' for configuration {PROP}: empty rule")
    return [parse_rule(p) for p in parts]


def _check(text: str) -> str | None:
    try:
        parse_rules(text)
    except ConfigError as exc:
        return str(exc).split(f"{PROP}: ", 1)[-1]
    return None


VALIDATOR = Validator(_check, "`RULE:[n:format](regex)s/from/to/g/L` or `/U`, `DEFAULT`")


class KerberosShortNamer:
    """First rule that maps the name wins (Kafka's KerberosShortNamer.shortName)."""

    def __init__(self, rules_text: str | None, default_realm: str):
        self.rules = parse_rules(rules_text)
        self.default_realm = default_realm

    def short_name(self, principal: str) -> str:
        m = _NAME.fullmatch(principal)
        if m is None:
            if "@" in principal:
                raise KerberosRuleError(f"Malformed Kerberos name: {principal}")
            return principal  # already simple, as in Kafka
        service, host, realm = m.group(1), m.group(3), m.group(4)
        params = [realm, service] if host is None else [realm, service, host]
        for rule in self.rules:
            result = rule.apply(params, self.default_realm)
            if result is not None:
                return result
        raise KerberosRuleError(f"No rules apply to {principal}, rules {[r.text for r in self.rules]}")
