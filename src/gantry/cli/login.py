"""``gantry login`` and ``gantry logout``, with Docker's config.json and messages."""

from __future__ import annotations

import sys

import click

from gantry.errors import UsageError

_PLAIN_WARNING = (
    "WARNING! Your password will be stored unencrypted in {path}.\n"
    "Configure a credential helper to remove this warning. See\n"
    "https://docs.docker.com/go/credential-store/\n"
)


@click.command()
@click.argument("server", required=False)
@click.option("-u", "--username", help="Username")
@click.option("-p", "--password", help="Password or Personal Access Token (PAT)")
@click.option("--password-stdin", is_flag=True, help="Take the Password or PAT from stdin")
def login(
    server: str | None, username: str | None, password: str | None, password_stdin: bool
) -> None:
    """Authenticate to a registry (Docker Hub by default)."""
    from gantry.distribution import ConfigFile, Credential, RegistryClient
    from gantry.distribution.credentials import DOCKER_HUB_KEY, server_key

    if password is not None and password_stdin:
        raise UsageError("--password and --password-stdin are mutually exclusive")
    if password is not None:
        click.echo(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True
        )
    if password_stdin:
        if not username:
            raise UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    key = server_key(server or DOCKER_HUB_KEY)
    domain = "docker.io" if key == DOCKER_HUB_KEY else key
    config = ConfigFile()
    if not username or password is None:
        stored = config.get(key)
        if not sys.stdin.isatty():
            if stored:
                username, password = stored.username, stored.password
            else:
                raise UsageError("Cannot perform an interactive login from a non TTY device")
        else:
            username = username or click.prompt(
                "Username" + (f" ({stored.username})" if stored.username else ""),
                default=stored.username or None,
                show_default=False,
            )
            password = click.prompt("Password", hide_input=True)
    if not username:
        raise UsageError("Error: Non-null Username Required")
    if not password:
        raise UsageError("Error: Non-null Password Required")
    cred = Credential(username, password)
    RegistryClient(domain, credential=cred).check_login()
    where = config.store(key, cred)
    if where == str(config.path):
        click.echo(_PLAIN_WARNING.format(path=where), err=True)
    click.echo("Login Succeeded")


@click.command()
@click.argument("server", required=False)
def logout(server: str | None) -> None:
    """Log out from a registry (Docker Hub by default)."""
    from gantry.distribution import ConfigFile
    from gantry.distribution.credentials import DOCKER_HUB_KEY, server_key

    key = server_key(server or DOCKER_HUB_KEY)
    config = ConfigFile()
    if config.erase(key):
        click.echo(f"Removing login credentials for {key}")
    else:
        click.echo(f"Not logged in to {key}")
