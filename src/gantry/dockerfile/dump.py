"""Print a parse tree in the format of BuildKit's parser test files (``testfiles/*/result``).

One line per instruction::

    (run ["--mount=type=cache,target=/x"] "make")
    (onbuild (copy "." "/"))

The lower-cased instruction, then its flags as Go's ``%q`` of a ``[]string``,
then each argument quoted like Go's ``strconv.Quote``. Argument shapes, as the
parser produces them: exec form -> one argument per array element; shell form
-> one argument (the joined line); ENV/LABEL -> ``key value sep`` triplets
(``sep`` is ``=`` or empty for the legacy ``ENV key value``); HEALTHCHECK ->
``CMD``/``NONE`` then the command; ONBUILD -> the nested instruction.
"""

from __future__ import annotations

from collections.abc import Iterable

from gantry.dockerfile.goquote import go_quote, go_quote_list
from gantry.dockerfile.parser import Node, ParseResult

__all__ = ["dump", "dump_node"]


def _head(node: Node) -> list[str]:
    parts = [node.keyword.lower()]
    if node.flags:
        parts.append(go_quote_list(node.flags))
    return parts


def dump_node(node: Node) -> str:
    """One instruction, without the surrounding parentheses."""
    chain = [node]  # ONBUILD nests its trigger; walked in a loop (no recursion limit)
    while chain[-1].child is not None:
        chain.append(chain[-1].child)
    last = chain.pop()
    parts = _head(last)
    if not last.known:
        parts.append('""')  # BuildKit keeps an empty argument for what it ignores
    else:
        parts.extend(go_quote(arg) for arg in last.args)
    text = " ".join(parts).strip()
    for outer in reversed(chain):
        text = " ".join([*_head(outer), f"({text})"]).strip()
    return text


def dump(tree: ParseResult | Iterable[Node]) -> str:
    """The whole tree, one ``(...)`` line per instruction, no trailing newline."""
    nodes = tree.nodes if isinstance(tree, ParseResult) else tree
    return "\n".join(f"({dump_node(node)})" for node in nodes)
