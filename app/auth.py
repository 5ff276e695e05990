"""Admin passwords: salted scrypt hashes, constant-time checks, and a pause after failures.

``python -m app.auth hash`` asks for a password (twice, not echoed) and prints the hash to
put in ``RAG_ADMIN_PASSWORD_HASH`` or in ``.streamlit/secrets.toml`` as ``admin_password_hash``.
The password itself is never stored anywhere.

Format: ``scrypt$N$r$p$<salt hex>$<hash hex>``. scrypt (RFC 7914) is memory-hard, so guessing
on a GPU costs as much memory per try as here; N=2**14, r=8, p=1 are the parameters RFC 7914
and OWASP name for interactive logins (16 MiB, about 50 ms).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.errors import ConfigError

SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES, _KEY_BYTES = 16, 32

MAX_FAILURES = 5  # per browser session, then a pause
LOCK_SECONDS = 30.0
PROCESS_MAX_FAILURES = 20  # across all sessions (a new session per guess gains nothing)
PROCESS_LOCK_SECONDS = 60.0


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * 1024 * 1024,
        dklen=_KEY_BYTES,
    )


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A storable hash of ``password`` with a fresh random salt."""
    if not password:
        raise ValueError("the password is empty")
    salt = salt or secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, _N, _R, _P)
    return f"{SCHEME}${_N}${_R}${_P}${salt.hex()}${key.hex()}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    try:
        scheme, n, r, p, salt, key = stored.strip().split("$")
        if scheme != SCHEME:
            raise ValueError(scheme)
        parsed = int(n), int(r), int(p), bytes.fromhex(salt), bytes.fromhex(key)
    except ValueError:
        raise ConfigError(
            "The admin password hash is not valid; make a new one with `python -m app.auth hash` "
            "and put it in RAG_ADMIN_PASSWORD_HASH or in secrets.toml as admin_password_hash."
        ) from None
    if not (2 <= parsed[0] <= 2**20 and parsed[1] >= 1 and parsed[2] >= 1 and parsed[3]):
        raise ConfigError("The admin password hash has out-of-range scrypt parameters.")
    return parsed


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a ``hash_password`` result). The comparison
    takes the same time however many leading bytes match."""
    n, r, p, salt, key = _parse(stored)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), key)


def fingerprint(stored: str) -> str:
    """A short digest of the configured hash. A session remembers it at sign-in; when the
    admin password is changed or removed, the old sessions stop being admin on their next
    rerun."""
    return hashlib.sha256(stored.strip().encode()).hexdigest()[:16]


@dataclass
class Throttle:
    """After ``max_failures`` wrong passwords, refuse every try for ``lock_seconds``.
    Thread-safe: one instance is shared by all sessions of the process."""

    max_failures: int = MAX_FAILURES
    lock_seconds: float = LOCK_SECONDS
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    locked_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def wait_seconds(self) -> float:
        """Seconds until a try is allowed again; 0 when it is allowed now."""
        with self._lock:
            return max(0.0, self.locked_until - self.clock())

    def failed(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.max_failures:
                self.locked_until = self.clock() + self.lock_seconds
                self.failures = 0

    def succeeded(self) -> None:
        with self._lock:
            self.failures = 0


PROCESS_THROTTLE = Throttle(PROCESS_MAX_FAILURES, PROCESS_LOCK_SECONDS)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import getpass

    parser = argparse.ArgumentParser(
        prog="python -m app.auth",
        description="Make the admin password hash for RAG_ADMIN_PASSWORD_HASH "
        "(or admin_password_hash in .streamlit/secrets.toml).",
    )
    parser.add_argument("command", choices=["hash"], help="hash: prompt for a password")
    parser.parse_args(argv)
    password = getpass.getpass("Admin password: ")
    if len(password) < 12:
        print("error: use at least 12 characters", file=sys.stderr)
        return 2
    if getpass.getpass("Again: ") != password:
        print("error: the two passwords differ", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
