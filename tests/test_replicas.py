"""One deployment never sends an id twice: not after a restart, not from two replicas; replicas that know
their index (INSTANCES) split the store's users, so no user is in two replicas' sessions.

Real server processes on free ports, read over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from .conftest import ServerProcess
from .test_http import get


def live_events(server: ServerProcess, count: int) -> list[dict[str, Any]]:
    status, _headers, body = get(server, f"/stream/interactions?count={count}&rate=50000")
    assert status == 200
    return [json.loads(line) for line in body.splitlines()]


def ids(events: list[dict[str, Any]], field: str) -> set[str]:
    return {e[field] for e in events}


def test_a_restart_continues_with_new_ids(fresh_server) -> None:  # type: ignore[no-untyped-def]
    server = fresh_server("--workers", "1")
    before = live_events(server, 3000)
    assert server.stop() == 0
    after = live_events(fresh_server("--workers", "1"), 3000)
    assert not ids(before, "interaction_id") & ids(after, "interaction_id")
    assert not ids(before, "session_id") & ids(after, "session_id")


def test_replicas_serve_distinct_ids_and_with_instances_distinct_users(fresh_server) -> None:  # type: ignore[no-untyped-def]
    named = [live_events(fresh_server("--workers", "1", env={"INSTANCE": name}), 3000) for name in ("a", "b")]
    assert not ids(named[0], "interaction_id") & ids(named[1], "interaction_id")
    assert not ids(named[0], "session_id") & ids(named[1], "session_id")
    # With INSTANCES each simulates its own part of the users (Heroku's web.1 and web.2 are indices 0 and 1).
    split = [live_events(fresh_server("--workers", "2", env={"INSTANCES": "2", "DYNO": dyno}), 4000)
             for dyno in ("web.1", "web.2")]
    assert not ids(split[0], "user_id") & ids(split[1], "user_id")
    assert not ids(split[0], "interaction_id") & ids(split[1], "interaction_id")


def test_instances_without_an_index_is_a_one_line_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clickstream.cli", "serve", "--port", "0", "--instances", "2"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "INSTANCE": "3f2a-replica"},
    )
    assert result.returncode == 2
    message = ("clickstream: with INSTANCES=2, INSTANCE must be this replica's index 0..1 (or Heroku's "
               "web.1..web.2), got '3f2a-replica'")
    assert result.stderr.strip().splitlines() == [message]
