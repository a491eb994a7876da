"""`keystream user add|list|remove`: SCRAM users over the Admin API (KIP-554's
AlterUserScramCredentials / DescribeUserScramCredentials through confluent-kafka), what Kafka's
`kafka-configs --entity-type users` does for SCRAM.

The password never goes on the command line (it would show in `ps` and shell history): it is
prompted for, or read from the first line of `--password-file`. The admin client salts and hashes
it (PBKDF2) before sending; the broker stores only the derived keys.
"""

from __future__ import annotations

from pathlib import Path

import click
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from keystream.auth.sasl.scram import DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS
from keystream.broker.errors import ErrorCode
from keystream.cli_common import (
    ADMIN_TIMEOUT_S,
    client_config,
    client_options,
    describe_error,
    error_code,
    fail,
)

MECHANISMS = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}
MECHANISM_CHOICE = click.Choice(list(MECHANISMS), case_sensitive=False)


def _admin(o: dict) -> AdminClient:
    return AdminClient(client_config(o["bootstrap_server"], o["command_config"]))


def _mechanism_name(m: ScramMechanism) -> str:
    return m.name.replace("_", "-")


def read_password(password_file: str | None) -> str:
    """The first line of the file (without its line ending), else a hidden, confirmed prompt."""
    if password_file is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        try:
            text = Path(password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"cannot read --password-file: {exc}") from None
        lines = text.splitlines()
        password = lines[0] if lines else ""
    if not password:
        raise fail("the password must not be empty")
    return password


@click.group()
def user() -> None:
    """Manage SCRAM users (SASL/SCRAM-SHA-256/512 credentials): add, list, remove."""


@user.command()
@client_options()
@click.argument("name")
@click.option("--mechanism", type=MECHANISM_CHOICE, default="SCRAM-SHA-512", show_default=True)
@click.option("--iterations", type=click.IntRange(MIN_ITERATIONS, MAX_ITERATIONS), default=DEFAULT_ITERATIONS,
              show_default=True, help="PBKDF2 iterations.")
@click.option("--password-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Read the password from the first line of FILE [default: prompt].")
def add(**o) -> None:
    """Create user NAME, or set a new password for it (one credential per mechanism)."""
    mechanism = MECHANISMS[o["mechanism"].upper()]
    password = read_password(o["password_file"])
    upsertion = UserScramCredentialUpsertion(o["name"], ScramCredentialInfo(mechanism, o["iterations"]),
                                             password.encode("utf-8"))
    admin = _admin(o)  # keep the client alive until its futures settle
    try:
        admin.alter_user_scram_credentials([upsertion], request_timeout=ADMIN_TIMEOUT_S)[o["name"]].result()
    except KafkaException as exc:
        raise fail(f"cannot set the credential of user '{o['name']}': {describe_error(exc)}") from None
    click.echo(f"Set {_mechanism_name(mechanism)} credential for user '{o['name']}' ({o['iterations']} iterations).")


@user.command(name="list")
@client_options()
@click.argument("names", nargs=-1)
def list_(**o) -> None:
    """List SCRAM users and their mechanisms (all users, or only NAMES)."""
    admin = _admin(o)
    names = list(dict.fromkeys(o["names"]))
    try:
        if names:
            futures = admin.describe_user_scram_credentials(names, request_timeout=ADMIN_TIMEOUT_S)
            found = {name: f.result() for name, f in futures.items()}
        else:
            found = admin.describe_user_scram_credentials(request_timeout=ADMIN_TIMEOUT_S).result()
    except KafkaException as exc:
        raise fail(f"cannot list users: {describe_error(exc)}") from None
    for name in sorted(found):
        creds = sorted(found[name].scram_credential_infos, key=lambda c: c.mechanism.value)
        described = ", ".join(f"{_mechanism_name(c.mechanism)}=iterations={c.iterations}" for c in creds)
        click.echo(f"SCRAM credential configs for user-principal '{name}' are {described}")


@user.command()
@client_options()
@click.argument("name")
@click.option("--mechanism", type=MECHANISM_CHOICE, help="Remove only this credential [default: all of them].")
@click.option("--if-exists", is_flag=True, help="Succeed quietly when the user does not exist.")
def remove(**o) -> None:
    """Remove user NAME's SCRAM credentials."""
    name = o["name"]
    admin = _admin(o)
    if o["mechanism"]:
        mechanisms = [MECHANISMS[o["mechanism"].upper()]]
    else:
        try:
            described = admin.describe_user_scram_credentials([name], request_timeout=ADMIN_TIMEOUT_S)[name].result()
            mechanisms = [c.mechanism for c in described.scram_credential_infos]
        except KafkaException as exc:
            if o["if_exists"] and error_code(exc) == ErrorCode.RESOURCE_NOT_FOUND:
                return
            raise fail(f"cannot remove user '{name}': {describe_error(exc)}") from None
    # One request per mechanism: the API refuses two alterations of one user in a request.
    for mechanism in mechanisms:
        deletion = UserScramCredentialDeletion(name, mechanism)
        try:
            admin.alter_user_scram_credentials([deletion], request_timeout=ADMIN_TIMEOUT_S)[name].result()
        except KafkaException as exc:
            if o["if_exists"] and error_code(exc) == ErrorCode.RESOURCE_NOT_FOUND:
                continue
            raise fail(f"cannot remove the {_mechanism_name(mechanism)} credential of user '{name}': "
                       f"{describe_error(exc)}") from None
        click.echo(f"Removed {_mechanism_name(mechanism)} credential of user '{name}'.")
