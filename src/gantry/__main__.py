"""``gantry`` and ``python -m gantry``: the one entry point of the command line."""

import os
import sys

#: Verbs whose process has nothing left to do once ``main`` returns: their store is
#: closed, their container's output flushed, any supervisor forked away. They skip the
#: interpreter's teardown (freeing every module and object one by one), which a short
#: ``gantry run --rm`` would otherwise wait for. Every other verb exits the usual way.
_QUICK_EXIT = frozenset({"run", "create", "start", "rm"})


def _quick_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # what the interpreter reports when the final flush fails
    os._exit(code)


def main() -> None:
    """Run the command line in ``sys.argv`` and exit."""
    from gantry.cli.run import quick_run

    # the common ``gantry run`` command lines need neither click nor the command table
    quick = quick_run(sys.argv[1:])
    if quick is not None:
        _quick_exit(quick)

    from gantry.cli.main import command_word
    from gantry.cli.main import main as cli_main

    try:
        cli_main()
    except SystemExit as done:
        if not isinstance(done.code, int | None) or command_word(sys.argv[1:]) not in _QUICK_EXIT:
            raise
        _quick_exit(done.code or 0)


if __name__ == "__main__":
    main()
