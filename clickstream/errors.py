"""Exit codes, and the errors that end a process with one of them.

Exit codes are a protocol between the server, its workers and whatever runs them (a PaaS, systemd, a test):

| code | meaning | what to do |
|---|---|---|
| 0 | stopped cleanly (a signal, or the end of the work) | nothing |
| 2 | bad configuration or command line: nothing was started | fix the named setting |
| 3 | could not start: the address is in use, or the workers could not boot | free the port, read the log |
| 4 | halted: the workers crashed in a loop, so restarting them was pointless | read the workers' log |
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final[int] = 0
EXIT_CONFIG: Final[int] = 2
EXIT_BOOT_ERROR: Final[int] = 3
EXIT_HALTED: Final[int] = 4


class ConfigError(ValueError):
    """A setting or flag out of its range: one line for the user, exit code 2."""


class Halt(BaseException):
    """The supervisor gives up (boot failure or crash loop). A BaseException, so no `except Exception` in the
    serving code can swallow it on its way to the lifecycle, which turns it into an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
