"""Keep the client secret and every access token out of all log output, at every level.

Why a logging filter on the handlers and not only careful messages: the tap's own messages never
format secrets, but other code logs too (the SDK's request and error messages, ``requests`` and
``urllib3`` at DEBUG, tracebacks of exceptions that quote a body). A filter on each handler sees
every record that reaches output, whichever logger emitted it, and replaces every known secret
value before the record is formatted. Secrets are registered as they appear: the client secret
when the tap starts, each access token when it is issued.
"""

from __future__ import annotations

import logging
import threading

MASK = "[REDACTED]"

#: Shorter values are not masked: replacing a 1-3 character string would garble every line.
MIN_SECRET_LENGTH = 4


class SecretRedactor(logging.Filter):
    """Replaces registered secret values in a record's message, exception and stack text."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, value: object) -> None:
        """Register a secret value (ignored when empty or too short to mask safely)."""
        text = "" if value is None else str(value)
        if len(text) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if text not in self._secrets:
                # Longest first, so a secret containing another is masked whole.
                self._secrets = tuple(sorted((*self._secrets, text), key=len, reverse=True))

    def redact(self, text: str) -> str:
        """Return ``text`` with every registered secret replaced by ``[REDACTED]``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


#: One redactor per process: handlers keep it across tap instances (tests build many taps).
REDACTOR = SecretRedactor()


def install() -> None:
    """Attach the redactor to every handler of the root logger and of all configured loggers."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if REDACTOR not in handler.filters:
                handler.addFilter(REDACTOR)
