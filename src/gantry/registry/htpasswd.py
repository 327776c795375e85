"""htpasswd files with bcrypt entries (``htpasswd -B``), as distribution reads them."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from gantry.errors import UsageError


class Htpasswd:
    """Users and bcrypt hashes from a file; re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, bytes] = {}
        self._mtime = -1.0
        self._ok: dict[str, float] = {}  # sha256(user, password, hash) -> expiry
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except OSError as e:
            raise UsageError(f"cannot read htpasswd file {self.path}: {e.strerror}") from None
        if st.st_mtime == self._mtime:
            return
        users: dict[str, bytes] = {}
        for n, line in enumerate(self.path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not user:
                raise UsageError(f"{self.path}:{n}: expected USER:BCRYPT-HASH")
            if not hashed.startswith(("$2y$", "$2b$", "$2a$")):
                raise UsageError(
                    f"{self.path}:{n}: only bcrypt entries are supported (htpasswd -B)"
                )
            users[user] = hashed.encode()
        self._users = users
        self._mtime = st.st_mtime
        self._ok.clear()

    def verify(self, user: str, password: str) -> bool:
        """Check a password (bcrypt is slow: successes are remembered for a minute)."""
        import bcrypt

        with self._lock:
            try:
                self._load()
            except UsageError:
                return False
            hashed = self._users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(b"\0".join([user.encode(), password.encode(), hashed])).hexdigest()
        now = time.monotonic()
        if self._ok.get(key, 0.0) > now:
            return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
        if ok:
            self._ok[key] = now + 60.0
        return bool(ok)


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash in the ``$2y$`` form Apache's htpasswd writes."""
    import bcrypt

    h = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
    return "$2y$" + h[4:]
