"""gantry: a daemonless, Docker-compatible container image system.

The library is usable without the CLI; see ``docs/architecture.md`` for the
rooms (packages) and what each one offers.
"""

__version__ = "0.1.0"
