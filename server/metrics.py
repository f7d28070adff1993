"""Counters of the whole server, aggregated in the main process, as JSON or Prometheus text."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamStats:
    """One open stream, as /metrics shows it."""

    id: int
    path: str
    target_rate_eps: float | None
    started_s: float
    events_sent: int = 0
    bytes_sent: int = 0

    def snapshot(self, now_s: float) -> dict[str, Any]:
        elapsed = max(now_s - self.started_s, 1e-9)
        return {
            "id": self.id,
            "path": self.path,
            "target_rate_eps": self.target_rate_eps,
            "achieved_rate_eps": round(self.events_sent / elapsed, 1),
            "events_sent": self.events_sent,
            "bytes_sent": self.bytes_sent,
            "age_s": round(elapsed, 3),
        }


class RateWindow:
    """Events per second over the last `span_s`, from per-slot counts (cheap to update per write)."""

    def __init__(self, span_s: float, slot_s: float = 0.1) -> None:
        self.slot_s = slot_s
        self.slots: deque[tuple[int, int]] = deque(maxlen=int(span_s / slot_s) + 1)
        self.span_s = span_s

    def add(self, now_s: float, count: int) -> None:
        slot = int(now_s / self.slot_s)
        if self.slots and self.slots[-1][0] == slot:
            self.slots[-1] = (slot, self.slots[-1][1] + count)
        else:
            self.slots.append((slot, count))

    def rate(self, now_s: float) -> float:
        oldest = int((now_s - self.span_s) / self.slot_s)
        total = sum(count for slot, count in self.slots if slot > oldest)
        return total / self.span_s


class EventClock:
    """How fast the live site's event time passes: event-time seconds per wall second over the last `span_s`.

    The live site's event time is the store's own (a stream delivered at R events per second shows R / A(t)
    seconds of store time per second, A(t) being the store's events per second), so it is measured, not set.
    """

    def __init__(self, span_s: float = 10.0, every_s: float = 0.25) -> None:
        self.span_s, self.every_s = span_s, every_s
        self.samples: deque[tuple[float, int]] = deque()  # (wall seconds, latest event time ms)
        self.latest_ms = 0

    def observe(self, now_s: float, event_ms: int) -> None:
        self.latest_ms = max(self.latest_ms, event_ms)
        if not self.samples or now_s - self.samples[-1][0] >= self.every_s:
            self.samples.append((now_s, self.latest_ms))
            while self.samples and self.samples[0][0] < now_s - self.span_s:
                self.samples.popleft()

    def speed(self) -> float | None:
        """None until two samples exist (no live stream has run yet)."""
        if len(self.samples) < 2:
            return None
        (wall0, event0), (wall1, event1) = self.samples[0], self.samples[-1]
        return round((event1 - event0) / 1000 / max(wall1 - wall0, 1e-9), 1)


@dataclass
class Metrics:
    started_s: float = field(default_factory=time.monotonic)
    events_sent_total: int = 0
    bytes_sent_total: int = 0
    streams_total: int = 0
    streams_disconnected_total: int = 0
    streams: dict[int, StreamStats] = field(default_factory=dict)
    window_1s: RateWindow = field(default_factory=lambda: RateWindow(1.0))
    window_10s: RateWindow = field(default_factory=lambda: RateWindow(10.0))
    live_clock: EventClock = field(default_factory=EventClock)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def open_stream(self, path: str, target_rate_eps: float | None) -> StreamStats:
        stats = StreamStats(next(self._ids), path, target_rate_eps, time.monotonic())
        self.streams[stats.id] = stats
        self.streams_total += 1
        return stats

    def close_stream(self, stats: StreamStats, disconnected: bool) -> None:
        self.streams.pop(stats.id, None)
        if disconnected:
            self.streams_disconnected_total += 1

    def sent(self, stats: StreamStats, events: int, nbytes: int) -> None:
        now = time.monotonic()
        stats.events_sent += events
        stats.bytes_sent += nbytes
        self.events_sent_total += events
        self.bytes_sent_total += nbytes
        self.window_1s.add(now, events)
        self.window_10s.add(now, events)

    def snapshot(self, workers: list[dict[str, Any]], catalog: dict[str, int]) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "cached_users": catalog["users"],
            "cached_products": catalog["products"],
            "initialized": bool(workers) and all(w["state"] == "ready" for w in workers),
            "uptime_seconds": round(now - self.started_s, 3),
            "active_connections": len(self.streams),
            "events_sent_total": self.events_sent_total,
            "bytes_sent_total": self.bytes_sent_total,
            "streams_total": self.streams_total,
            "streams_disconnected_total": self.streams_disconnected_total,
            "send_rate_1s_eps": round(self.window_1s.rate(now), 1),
            "send_rate_10s_eps": round(self.window_10s.rate(now), 1),
            "event_time_speed": self.live_clock.speed(),
            "workers": workers,
            "streams": [s.snapshot(now) for s in self.streams.values()],
        }


def prometheus(snapshot: dict[str, Any]) -> str:
    """The snapshot in Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value}" for labels, value in samples)

    metric("clickstream_up", "gauge", "1 while every worker is ready.", [("", int(snapshot["initialized"]))])
    metric("clickstream_uptime_seconds", "gauge", "Seconds since the server started.",
           [("", snapshot["uptime_seconds"])])
    metric("clickstream_catalog_users", "gauge", "Users in the catalog.", [("", snapshot["cached_users"])])
    metric("clickstream_catalog_products", "gauge", "Products in the catalog.", [("", snapshot["cached_products"])])
    metric("clickstream_active_connections", "gauge", "Open streams.", [("", snapshot["active_connections"])])
    metric("clickstream_events_sent_total", "counter", "Events sent to clients.", [("", snapshot["events_sent_total"])])
    metric("clickstream_bytes_sent_total", "counter", "Body bytes sent to clients.",
           [("", snapshot["bytes_sent_total"])])
    metric("clickstream_streams_total", "counter", "Streams opened.", [("", snapshot["streams_total"])])
    metric("clickstream_streams_disconnected_total", "counter", "Streams ended by the client going away.",
           [("", snapshot["streams_disconnected_total"])])
    metric("clickstream_send_rate_events_per_second", "gauge", "Events sent per second over a window.",
           [('{window="1s"}', snapshot["send_rate_1s_eps"]), ('{window="10s"}', snapshot["send_rate_10s_eps"])])
    if snapshot["event_time_speed"] is not None:
        metric("clickstream_event_time_speed", "gauge", "Event-time seconds the live site shows per wall second.",
               [("", snapshot["event_time_speed"])])
    workers = snapshot["workers"]
    metric("clickstream_worker_events_generated_total", "counter", "Events a worker wrote to its ring.",
           [(f'{{worker="{w["index"]}"}}', w["events_generated"]) for w in workers])
    metric("clickstream_worker_ring_fill_ratio", "gauge", "Share of a worker's ring holding unread events.",
           [(f'{{worker="{w["index"]}"}}', w["ring_fill_ratio"]) for w in workers])
    metric("clickstream_worker_restarts_total", "counter", "Times a worker was restarted.",
           [(f'{{worker="{w["index"]}"}}', w["restarts"]) for w in workers])
    streams = snapshot["streams"]
    metric("clickstream_stream_events_sent", "gauge", "Events sent by an open stream.",
           [(f'{{stream="{s["id"]}",path="{s["path"]}"}}', s["events_sent"]) for s in streams])
    metric("clickstream_stream_achieved_rate_events_per_second", "gauge", "Achieved rate of an open stream.",
           [(f'{{stream="{s["id"]}",path="{s["path"]}"}}', s["achieved_rate_eps"]) for s in streams])
    metric("clickstream_stream_target_rate_events_per_second", "gauge", "Requested rate of an open stream.",
           [(f'{{stream="{s["id"]}",path="{s["path"]}"}}', s["target_rate_eps"] or 0) for s in streams])
    return "\n".join(lines) + "\n"
