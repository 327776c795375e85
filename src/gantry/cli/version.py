from __future__ import annotations

import platform

import click

from gantry import __version__


@click.command()
def version() -> None:
    """Show the gantry version information."""
    click.echo(f"gantry version {__version__}")
    click.echo(f"Python {platform.python_version()} on {platform.system()}/{platform.machine()}")
