"""``gantry pull`` (also ``gantry image pull``) and the transfer progress display.

On a terminal, Docker's per-layer lines update in place (bars with bytes); when
output is not a terminal, one line per status change and no byte counts, as
``docker pull | cat`` prints; ``-q`` prints only the pulled reference.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

import click

from gantry.distribution.progress import Event


def human(n: float) -> str:
    """go-units HumanSize as Docker's progress bars show it (``12.5MB``)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


def bar(current: int, total: int, width: int = 50) -> str:
    if total <= 0:
        return f"{human(current)}"
    filled = min(width, int(width * current / total))
    arrow = "=" * max(filled - 1, 0) + (">" if filled else "")
    return f"[{arrow}{' ' * (width - len(arrow))}] {human(current):>8}/{human(total)}"


class Display:
    """Renders :class:`Event` objects; thread-safe; ``close()`` when done."""

    def __init__(self, out: TextIO | None = None, *, quiet: bool = False) -> None:
        self.out = out or sys.stdout
        self.quiet = quiet
        self.tty = not quiet and self.out.isatty()
        self._lock = threading.Lock()
        self._rows: dict[str, str] = {}
        self._live: Any = None
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.out, highlight=False)
            self._live = Live("", console=self._console, refresh_per_second=8, transient=False)
            self._live.start()

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        with self._lock:
            if not self.tty:
                if event.is_progress:
                    return
                line = f"{event.id}: {event.status}" if event.id else event.status
                self.out.write(line + "\n")
                self.out.flush()
                return
            if not event.id:
                self._flush_rows()
                self._console.print(event.status, markup=False)
                return
            text = event.status
            if event.is_progress:
                text = f"{event.status} {bar(event.current, event.total)}"
            elif event.status.startswith("Retrying"):
                text = "Retrying"
            self._rows[event.id] = f"{event.id}: {text}"
            self._refresh()

    def line(self, text: str) -> None:
        """A plain line after the layers (``Status: ...``), shown even when quiet? no."""
        if self.quiet:
            return
        with self._lock:
            if self.tty:
                self._flush_rows()
                self._console.print(text, markup=False)
            else:
                self.out.write(text + "\n")
                self.out.flush()

    def _refresh(self) -> None:
        from rich.text import Text

        self._live.update(Text("\n".join(self._rows.values())))

    def _flush_rows(self) -> None:
        # freeze the current rows above the next plain line
        if self._rows:
            from rich.text import Text

            self._live.update(Text(""))
            self._console.print("\n".join(self._rows.values()), markup=False)
            self._rows.clear()

    def close(self) -> None:
        with self._lock:
            if self._live is not None:
                self._flush_rows()
                self._live.stop()
                self._live = None


def root_of(ctx: click.Context) -> Any:
    return ctx.find_root().obj["root"]


@click.command()
@click.argument("name", metavar="NAME[:TAG|@DIGEST]")
@click.option("-a", "--all-tags", is_flag=True, help="Download all tagged images in the repository")
@click.option("--platform", help="Set platform if server is multi-platform capable")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.option(
    "--max-concurrent-downloads",
    type=click.IntRange(1, 64),
    default=3,
    show_default=True,
    help="Layers downloaded at once",
)
@click.pass_context
def pull(
    ctx: click.Context,
    name: str,
    all_tags: bool,
    platform: str | None,
    quiet: bool,
    max_concurrent_downloads: int,
) -> None:
    """Download an image from a registry."""
    from gantry import reference
    from gantry.distribution import RegistryClient, pull_all_tags
    from gantry.distribution import pull as do_pull
    from gantry.store import Store

    ref = reference.parse(name)
    display = Display(quiet=quiet)
    try:
        with Store(root_of(ctx)) as store:
            if all_tags:
                results = pull_all_tags(
                    store,
                    name,
                    platform=platform,
                    progress=display,
                    concurrency=max_concurrent_downloads,
                )
                any_new = any(r.downloaded for r in results)
                display.close()
                display.line(
                    f"Status: Downloaded newer images for {ref.familiar_name}"
                    if any_new
                    else f"Status: Image is up to date for {ref.familiar_name}"
                )
                click.echo(ref.name)
                return
            if ref.is_name_only and not quiet:
                display.line(f"Using default tag: {reference.DEFAULT_TAG}")
            client = RegistryClient(ref.domain)
            result = do_pull(
                store,
                name,
                platform=platform,
                client=client,
                progress=display,
                concurrency=max_concurrent_downloads,
            )
    finally:
        display.close()
    shown = result.reference.familiar()
    display.line(
        f"Status: Downloaded newer image for {shown}"
        if result.downloaded
        else f"Status: Image is up to date for {shown}"
    )
    click.echo(str(result.reference))
