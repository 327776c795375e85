"""Container IDs and Docker-style random names (``adjective_surname``).

The word lists are gantry's own: adjectives a person might be described with, and
surnames of people who shaped computing, mathematics and engineering. As in Docker a
name is ``<adjective>_<surname>``; when a name is taken, a digit is appended.
"""

from __future__ import annotations

import os
import re

ADJECTIVES: tuple[str, ...] = (
    "able", "agile", "alert", "amiable", "ample", "ardent", "astute", "avid", "bold",
    "brave", "breezy", "bright", "brisk", "calm", "candid", "careful", "cheery", "civil",
    "clever", "cosmic", "crisp", "curious", "daring", "dapper", "deft", "devoted", "diligent",
    "dreamy", "eager", "earnest", "easy", "elated", "eloquent", "epic", "exact", "fearless",
    "fervent", "fluent", "focused", "frank", "friendly", "frosty", "gallant", "gentle",
    "gifted", "glad", "graceful", "grand", "hardy", "hearty", "honest", "hopeful", "humble",
    "inspired", "jolly", "jovial", "keen", "kind", "lively", "loyal", "lucid", "lucky",
    "merry", "mellow", "mindful", "modest", "nifty", "nimble", "noble", "patient",
    "peaceful", "placid", "plucky", "polite", "proud", "quick", "quiet", "radiant", "rapid",
    "ready", "serene", "sharp", "shiny", "sincere", "sleek", "smart", "snappy", "solid",
    "spry", "steady", "stoic", "sturdy", "sunny", "swift", "tender", "thrifty", "tidy",
    "tranquil", "trusty", "upbeat", "valiant", "vibrant", "vivid", "warm", "wise", "witty",
    "zealous", "zesty",
)  # fmt: skip

SURNAMES: tuple[str, ...] = (
    "abel", "agnesi", "al_khwarizmi", "allen", "archimedes", "babbage", "backus", "banach",
    "bardeen", "bernoulli", "boole", "borg", "brattain", "cantor", "cauchy", "cerf", "church",
    "clarke", "codd", "conway", "cook", "corbato", "cray", "curie", "dahl", "dijkstra",
    "easley", "engelbart", "erdos", "euclid", "euler", "fermat", "feynman", "floyd",
    "fourier", "galois", "gauss", "germain", "goldberg", "hamilton", "hamming", "hartree",
    "hilbert", "hoare", "hollerith", "hopper", "huffman", "hypatia", "jacobi", "johnson",
    "kahan", "karp", "kay", "kepler", "kernighan", "kilby", "knuth", "kolmogorov",
    "lamarr", "lamport", "laplace", "leibniz", "liskov", "lovelace", "mccarthy", "mcilroy",
    "minsky", "moore", "napier", "naur", "neumann", "newton", "noether", "noyce", "nygaard",
    "pascal", "perlman", "pike", "poincare", "ramanujan", "riemann", "ritchie", "rivest",
    "sammet", "shamir", "shannon", "shaw", "somerville", "stallman", "sutherland", "tarjan",
    "thompson", "torvalds", "turing", "vaughan", "wilkes", "wirth", "wozniak", "yao", "zuse",
)  # fmt: skip

#: What Docker accepts as a container name (after an optional leading '/').
VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def new_id() -> str:
    """A fresh container ID: 64 hex digits."""
    return os.urandom(32).hex()


def _pick(words: tuple[str, ...]) -> str:
    # os.urandom, not the secrets module: its import (hmac, random) costs every ``gantry run``
    return words[int.from_bytes(os.urandom(4), "big") % len(words)]


def random_name(retry: int = 0) -> str:
    """``adjective_surname``; from the second attempt on, a digit is appended as in Docker."""
    name = f"{_pick(ADJECTIVES)}_{_pick(SURNAMES)}"
    if retry > 0:
        name += str(os.urandom(1)[0] % 10)
    return name


def valid_name(name: str) -> bool:
    return VALID_NAME.match(name) is not None
