"""aiohttp's server log, tamed: one WARNING line per malformed request, client disconnects at DEBUG.

aiohttp's request handler logs every request it cannot parse with `logger.exception` (an ERROR and a
traceback: 1,226 of them in one fuzz run) and, when a handler raised because the client had gone, an
ERROR with `Cannot write to closing transport`. It takes the logger as an argument (`logger=`, passed
through `AppRunner`), so this adapter stands in for `aiohttp.server` and sorts what it is given.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

MAX_REASON_CHARS = 200


class RequestErrorLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            # A bad request line or header: the client's fault, said in one line (aiohttp's message spans
            # several, with a caret under the offending byte).
            reason = " ".join(str(error).split())[:MAX_REASON_CHARS]
            self.warning("malformed request from %s: %s", args[0] if args else "?", reason)
        elif isinstance(error, ConnectionError):
            self.debug("client went away (%s): %s", _render(msg, args), error)
        else:
            self.error(msg, *args, exc_info=exc_info, **kwargs)  # a real bug: keep the traceback


def _render(msg: object, args: tuple[object, ...]) -> str:
    try:
        return str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        return str(msg)


def request_error_log() -> RequestErrorLog:
    return RequestErrorLog(logging.getLogger("aiohttp.server"), {})
