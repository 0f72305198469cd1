"""Structured logs: every record carries the session id of the stream it was logged from, and an
optional JSON formatter writes one object a line for log shippers (Loki, Cloud Logging, ELK).

The session id lives in a ContextVar set by the streaming handler; asyncio tasks and
`asyncio.to_thread` copy the context, so records from anywhere in that session's call path carry it.
"""
from __future__ import annotations

import contextvars
import datetime
import json
import logging

session_id: contextvars.ContextVar[str] = contextvars.ContextVar("avatarlab_session_id", default="")

# LogRecord attributes that are not user fields passed with `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class SessionFilter(logging.Filter):
    """Adds `session_id` to each record (empty outside a session) so any formatter can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "session_id", ""):
            record.session_id = session_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, logger, msg, pid (which of `serve --processes N`),
    session_id when in a session, any `extra=` fields, and exc (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        out = {"ts": ts.isoformat(timespec="milliseconds"), "level": record.levelname, "logger": record.name,
               "msg": record.getMessage(), "pid": record.process}
        for k, v in vars(record).items():
            if k not in _STANDARD and v not in ("", None):
                out[k] = v if isinstance(v, (str, int, float, bool)) else repr(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(fmt: str) -> None:
    """Apply the log format ('text' or 'json') to the root logger's handlers."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    for h in root.handlers:
        if not any(isinstance(f, SessionFilter) for f in h.filters):
            h.addFilter(SessionFilter())
        if fmt == "json":
            h.setFormatter(JsonFormatter())
