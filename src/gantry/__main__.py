import os
import sys

from gantry.cli.main import command_word, main

#: Verbs whose process has nothing left to do once ``main`` returns: their store is
#: closed, their container's output flushed, any supervisor forked away. They skip the
#: interpreter's teardown (freeing every module and object one by one), which a short
#: ``gantry run --rm`` would otherwise wait for. Every other verb exits the usual way.
_QUICK_EXIT = frozenset({"run", "create", "start", "rm"})


try:
    main()
except SystemExit as done:
    if not isinstance(done.code, int | None) or command_word(sys.argv[1:]) not in _QUICK_EXIT:
        raise
    code = done.code or 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # what the interpreter reports when the final flush fails
    os._exit(code)
