"""`keystream certs init|issue|show|revoke`: the dev PKI (see keystream.certs). Keys are written
0600 and never echoed; errors are one line and exit non-zero."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from keystream.certs import DEFAULT_CA_DIR, REASONS, CertError, describe, init_ca, issue, render, revoke

KEY_TYPE = click.Choice(["ec", "rsa"], case_sensitive=False)
ca_dir_option = click.option(
    "--dir", "ca_dir", default=str(DEFAULT_CA_DIR), show_default=True, type=click.Path(file_okay=False),
    help="CA directory (ca.crt, ca.key, crl.pem, index.json).")


def _friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn PKI and file errors into a one-line `Error: ...` with exit status 1."""
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CertError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None
    return wrapper


@click.group()
def certs() -> None:
    """Dev CA and certificates for TLS listeners and mTLS clients."""


@certs.command("init")
@ca_dir_option
@click.option("--key-type", default="ec", show_default=True, type=KEY_TYPE, help="EC P-256 or RSA-3072.")
@click.option("--cn", "common_name", default="Keystream dev CA", show_default=True, help="CA common name.")
@click.option("--days", default=3650, show_default=True, type=click.IntRange(min=1), help="Validity.")
@click.option("--force", is_flag=True, help="Replace an existing CA (its certificates stop verifying).")
@_friendly
def init_command(ca_dir: str, key_type: str, common_name: str, days: int, force: bool) -> None:
    """Create a certificate authority."""
    ca = init_ca(Path(ca_dir), key_type=key_type.lower(), common_name=common_name, days=days, force=force)
    info = describe(ca.cert)["certificates"][0]
    click.echo(f"CA created: {info['subject']}, valid until {info['not_after']}")
    click.echo(f"  certificate (truststore): {ca.cert}")
    click.echo(f"  private key (0600):       {ca.key}")
    click.echo(f"  CRL:                      {ca.crl}")
    click.echo(f"  SHA-256: {info['fingerprints']['sha256']}")


@certs.command("issue")
@click.option("--name", required=True, help="File name stem: writes NAME.crt, NAME.key and NAME.pem.")
@ca_dir_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output directory [default: CA dir].")
@click.option("--server", is_flag=True, help="Extended key usage serverAuth (brokers, registry).")
@click.option("--client", is_flag=True, help="Extended key usage clientAuth (mTLS clients).")
@click.option("--cn", "common_name", help="Common name [default: NAME].")
@click.option("--o", "organization", help="Organization (O).")
@click.option("--ou", "organizational_unit", help="Organizational unit (OU).")
@click.option("--san", "sans", multiple=True, metavar="TYPE:VALUE[,...]",
              help="Subject alternative names: DNS:host, IP:addr, URI:uri, email:addr (repeatable).")
@click.option("--days", default=825, show_default=True, type=click.IntRange(min=1), help="Validity.")
@click.option("--key-type", default="ec", show_default=True, type=KEY_TYPE, help="EC P-256 or RSA-3072.")
@click.option("--key-password-file", type=click.Path(dir_okay=False, exists=True),
              help="Encrypt the key with the password in this file (first line).")
@click.option("--force", is_flag=True, help="Replace existing files of the same name (rotation).")
@_friendly
def issue_command(name: str, ca_dir: str, out_dir: str | None, server: bool, client: bool,
                  common_name: str | None, organization: str | None, organizational_unit: str | None,
                  sans: tuple[str, ...], days: int, key_type: str, key_password_file: str | None,
                  force: bool) -> None:
    """Issue a certificate signed by the CA."""
    if not (server or client):
        raise click.UsageError("choose --server, --client or both")
    password = _read_password(Path(key_password_file)) if key_password_file else None
    issued = issue(Path(ca_dir), name, out_dir=Path(out_dir) if out_dir else None, server=server,
                   client=client, common_name=common_name, organization=organization,
                   organizational_unit=organizational_unit, sans=list(sans), days=days,
                   key_type=key_type.lower(), key_password=password, force=force)
    info = describe(issued.cert)["certificates"][0]
    click.echo(f"Issued {info['subject']} ({', '.join(info['extended_key_usage'])}), serial {info['serial']}, "
               f"valid until {info['not_after']}")
    if info["sans"]:
        click.echo(f"  SANs: {', '.join(info['sans'])}")
    elif server:
        click.echo("  warning: no --san given; clients that verify host names will reject this server", err=True)
    click.echo(f"  certificate + chain: {issued.cert}")
    click.echo(f"  private key (0600):  {issued.key}")
    click.echo(f"  keystore PEM (0600): {issued.pem}  (ssl.keystore.type=PEM, ssl.keystore.location)")


def _read_password(path: Path) -> str:
    lines = path.read_text().splitlines()
    if not lines or not lines[0]:
        raise CertError(f"{path}: the password file is empty")
    return lines[0]


@certs.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_friendly
def show_command(file: str, as_json: bool) -> None:
    """Describe a certificate, chain, keystore PEM or CRL (private keys are never shown)."""
    info = describe(Path(file))
    click.echo(json.dumps(info, indent=2) if as_json else render(info))


@certs.command("revoke")
@click.argument("file", type=click.Path(dir_okay=False))
@ca_dir_option
@click.option("--reason", default="unspecified", show_default=True,
              type=click.Choice(list(REASONS), case_sensitive=False), help="RFC 5280 revocation reason.")
@_friendly
def revoke_command(file: str, ca_dir: str, reason: str) -> None:
    """Revoke a certificate issued by the CA and rewrite the CRL."""
    crl = revoke(Path(ca_dir), Path(file), reason)
    click.echo(f"Revoked {describe(Path(file))['certificates'][0]['subject']}; CRL written to {crl}")
