"""Sign-in sessions of the web pages: a token typed once into the sign-in form becomes a session
kept in the server's memory, named by a random id in an ``HttpOnly``, ``SameSite=Strict`` cookie.

The secret never leaves the server again: each request bearing the cookie is authenticated anew
with the token it was opened with (through the server's cached lookups), so a revoked or expired
token ends its sessions within the lookup cache's time. Every form that changes something carries
the session's CSRF token, compared in constant time; the sign-in form, which has no session yet,
carries one that is also set as a cookie of its own (double submit). Sessions end on sign-out, after
``idle`` seconds unused, and when the server restarts.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "Session", "Sessions", "same"]

SESSION_COOKIE = "opslineage_session"
CSRF_COOKIE = "opslineage_csrf"
_MAX_SESSIONS = 10_000  # the oldest unused go first past this


@dataclass
class Session:
    """One signed-in browser: the token it signed in with and its CSRF token."""

    secret: str = field(repr=False)
    csrf: str = field(repr=False)
    seen: float


class Sessions:
    """The open sessions of one server, by their cookie's id.

    Args:
        idle: seconds a session lives unused.
    """

    def __init__(self, idle: float = 8 * 3600) -> None:
        self.idle = idle
        self._open: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, secret: str) -> tuple[str, Session]:
        """A new session for the bearer of ``secret``: its cookie id and the session."""
        sid = secrets.token_urlsafe(32)
        session = Session(secret, self.new_csrf(), time.monotonic())
        with self._lock:
            if len(self._open) >= _MAX_SESSIONS:
                del self._open[min(self._open, key=lambda key: self._open[key].seen)]
            self._open[sid] = session
        return sid, session

    @staticmethod
    def new_csrf() -> str:
        """A new random CSRF token."""
        return secrets.token_urlsafe(32)

    def get(self, sid: str | None) -> Session | None:
        """The live session of cookie id ``sid`` (None: none, or it has idled out)."""
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._open.get(sid)
            if session is None:
                return None
            if now - session.seen > self.idle:
                del self._open[sid]
                return None
            session.seen = now
            return session

    def close(self, sid: str | None) -> None:
        """End the session of cookie id ``sid``, if there is one."""
        with self._lock:
            self._open.pop(sid or "", None)


def same(presented: str | None, expected: str) -> bool:
    """Whether ``presented`` is ``expected``, compared in constant time."""
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())
