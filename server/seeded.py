"""Seeded (replayable) generation: bounded, fair between clients, and dropped when its client goes away.

A seeded stream renders its rows on demand from an `EventGenerator` for its (seed, shard). Three costs
have to be bounded on a public server, and this module bounds each one:

- Building a generator for a new seed (measured: 0.27-0.44 s of CPU with 100,000 users, most of it Python
  holding the GIL, plus 0.12-0.15 s for its first epoch, and 25-60 MB of memory). At most `max_seeds`
  generators exist at once (in use or being built): a request for one more gets a 503 with `Retry-After`,
  before any header of its stream is sent. Builds run on their own thread, one at a time, so a new seed
  never delays the rendering of seeds already built.
- Rendering: one thread renders every seeded batch, as before (a generator reuses its epoch buffer, so it
  must never be used by two threads, and one thread bounds the CPU replays take from live streams). Each
  stream has at most one batch waiting (its loop awaits every read), so serving the waiting batches in
  arrival order is round-robin between streams: a client's replay cannot starve another's.
- Abandoned work: a waiting batch whose client has gone is dropped, never rendered (its stream then ends
  as a disconnect). Streams that are counted against the caps are only those whose client is still there.

`max_streams` caps concurrent unpaced seeded streams (those read as fast as the client reads: each keeps
the render thread busy); paced ones cost what their rate says and are bounded by the connection cap.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from ..definition import StreamDefinition
from ..workers.arrow import render_arrow
from ..workers.catalog import Catalog
from ..workers.generator import EventGenerator
from ..workers.model import ModelConfig
from ..workers.places import City

Key = StreamDefinition  # a generator per (seed, shard, start): the start shapes the store's events
RETRY_AFTER_S = 1  # about what building one seed's generator takes


class SeededBusy(web.HTTPServiceUnavailable):
    """A JSON 503 with `Retry-After`: the seeded path is at one of its caps."""

    def __init__(self, reason: str, message: str) -> None:
        body = {"error": reason, "status": 503, "message": message, "retry_after_s": RETRY_AFTER_S}
        super().__init__(text=json.dumps(body), content_type="application/json",
                         headers={"Retry-After": str(RETRY_AFTER_S)})


class ClientGone(ConnectionResetError):
    """A batch was dropped unrendered: its client had gone away."""


@dataclass(eq=False)
class _Entry:
    """One stream's generator: being built (`ready` pending) or built."""

    key: Key
    ready: asyncio.Future[EventGenerator]
    leases: set[Lease] = field(default_factory=set)
    # position_at answers: the same few (the stream's horizon) are asked by every request of the stream.
    positions: dict[int, int] = field(default_factory=dict)

    def in_use(self) -> bool:
        return any(lease.alive() for lease in self.leases)


@dataclass(eq=False)
class Lease:
    """What one seeded stream holds: its generator's entry, and a place under the caps until `release()`."""

    pool: SeededPool
    entry: _Entry
    unpaced: bool
    alive: Callable[[], bool]  # False once the stream's client has gone away

    def release(self) -> None:
        self.pool._release(self)


@dataclass(eq=False)
class _Job:
    """Work for the render thread: a batch of bytes, or a question about the stream (`position_at`)."""

    lease: Lease
    render: Callable[[EventGenerator], Any]
    done: asyncio.Future[Any]


class SeededPool:
    """Generators for seeded streams and the one thread that renders them (see the module docstring)."""

    # Concurrent offset requests (a Spark micro-batch split over partitions) read neighbouring ranges that
    # span an epoch boundary or two; with one cached epoch they recomputed a whole epoch for every batch.
    CACHED_EPOCHS = 2  # about 13 MB each

    def __init__(self, live_model: ModelConfig, live_catalog: Catalog, cities: tuple[City, ...],
                 max_streams: int, max_seeds: int) -> None:
        self.live_model = live_model
        self.live_catalog = live_catalog
        self.cities = cities
        self.max_streams = max_streams
        self.max_seeds = max_seeds
        self.render_thread = ThreadPoolExecutor(1, thread_name_prefix="clickstream-seeded")
        self.build_thread = ThreadPoolExecutor(1, thread_name_prefix="clickstream-seed-build")
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()  # least recently admitted first
        self._leases: set[Lease] = set()
        self._queue: deque[_Job] = deque()
        self._rendering = False
        self.dropped_batches = 0  # batches never rendered because their client had gone

    # -- admission (on the loop, before a stream sends its headers) --------------------------------------

    def admit(self, stream: StreamDefinition, unpaced: bool, alive: Callable[[], bool]) -> Lease:
        """A place for one seeded stream, or `SeededBusy` (a 503) if that would pass a cap."""
        self._sweep()
        if unpaced and sum(1 for lease in self._leases if lease.unpaced and lease.alive()) >= self.max_streams:
            raise SeededBusy("seeded_streams_busy",
                             f"{self.max_streams} unpaced seeded streams are open: retry, or give rate=")
        key = stream
        entry = self._entries.get(key)
        if entry is None:
            entry = self._new_entry(key)
        else:
            self._entries.move_to_end(key)
        lease = Lease(self, entry, unpaced, alive)
        entry.leases.add(lease)
        self._leases.add(lease)
        return lease

    def _new_entry(self, key: Key) -> _Entry:
        if len(self._entries) >= self.max_seeds:
            idle = next((e for e in self._entries.values() if not e.in_use() and e.ready.done()), None)
            if idle is None:
                raise SeededBusy("seeds_busy", f"{self.max_seeds} seeds are in use or being built: retry later")
            del self._entries[idle.key]  # its generator goes with the last reference
        loop = asyncio.get_running_loop()
        entry = _Entry(key, loop.create_future())
        self._entries[key] = entry
        built = loop.run_in_executor(self.build_thread, self._build, key)
        built.add_done_callback(lambda f: self._built(entry, f))
        return entry

    def _build(self, key: Key) -> EventGenerator:
        """Runs in the build thread."""
        # The live store's config with the request's seed and funnel: the same countries, cities and sizes.
        model = replace(self.live_model, seed=key.seed, funnel=key.funnel)
        # The live site's own seed reuses its catalog: no rebuild, same users as /stream/users.
        catalog = self.live_catalog if model == self.live_model else None
        return EventGenerator(model, key.shard, key.start_ms, cities=self.cities, catalog=catalog,
                              cached_epochs=self.CACHED_EPOCHS)

    def _built(self, entry: _Entry, built: asyncio.Future[EventGenerator]) -> None:
        if built.cancelled():
            entry.ready.cancel()
        elif (error := built.exception()) is not None:
            entry.ready.set_exception(error)
            if self._entries.get(entry.key) is entry:
                del self._entries[entry.key]  # the next request tries again
        else:
            entry.ready.set_result(built.result())
        self._pump()

    def _release(self, lease: Lease) -> None:
        self._leases.discard(lease)
        lease.entry.leases.discard(lease)

    # -- rendering ---------------------------------------------------------------------------------------

    async def render_ndjson(self, lease: Lease, first: int, count: int) -> bytes:
        data: bytes = await self._submit(lease, lambda g: g.render(first, count).tobytes())
        return data

    async def render_arrow(self, lease: Lease, first: int, count: int) -> bytes:
        """One record batch of the range as an encapsulated Arrow IPC message (no schema)."""
        data: bytes = await self._submit(lease, lambda g: render_arrow(g, first, count).serialize().to_pybytes())
        return data

    async def position_at(self, lease: Lease, time_ms: int) -> int:
        """How many positions of the lease's stream come before `time_ms`: computed once per generator, on the
        render thread (it may compute an epoch, which the generator's buffers hold)."""
        known = lease.entry.positions.get(time_ms)
        if known is None:
            known = lease.entry.positions[time_ms] = await self._submit(lease, lambda g: g.position_at(time_ms))
        return known

    async def end_ms(self, lease: Lease) -> int:
        """When the lease's store ends (a pure function of the store: no render thread needed)."""
        generator = await asyncio.shield(lease.entry.ready)
        return generator.end_ms

    async def _submit(self, lease: Lease, render: Callable[[EventGenerator], Any]) -> Any:
        job = _Job(lease, render, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._pump()
        # Cancelled (the server stopping): the job's future is cancelled with it, and the pump skips it.
        return await job.done

    def _sweep(self) -> None:
        """Drop waiting batches whose stream was cancelled or whose client has gone."""
        if not self._queue:
            return
        kept: deque[_Job] = deque()
        for job in self._queue:
            if job.done.done():
                continue
            if not job.lease.alive():
                self.dropped_batches += 1
                job.done.set_exception(ClientGone("the client went away before its batch was rendered"))
                continue
            kept.append(job)
        self._queue = kept

    def _pump(self) -> None:
        """Start the oldest waiting batch whose generator is built, if the render thread is free."""
        self._sweep()
        if self._rendering:
            return
        for job in self._queue:
            ready = job.lease.entry.ready
            if ready.done():
                self._queue.remove(job)
                break
        else:
            return
        if ready.cancelled() or ready.exception() is not None:
            job.done.set_exception(ready.exception() or RuntimeError("generator build cancelled"))
            self._pump()
            return
        generator = ready.result()
        self._rendering = True
        rendered = asyncio.get_running_loop().run_in_executor(self.render_thread, job.render, generator)
        rendered.add_done_callback(lambda f: self._rendered(job, f))

    def _rendered(self, job: _Job, rendered: asyncio.Future[Any]) -> None:
        self._rendering = False
        if not job.done.done():
            if rendered.cancelled():
                job.done.cancel()
            elif (error := rendered.exception()) is not None:
                job.done.set_exception(error)
            else:
                job.done.set_result(rendered.result())
        self._pump()

    def snapshot(self) -> dict[str, int]:
        """For /metrics."""
        alive = [lease for lease in self._leases if lease.alive()]
        return {
            "seeded_streams": len(alive),
            "seeded_unpaced_streams": sum(1 for lease in alive if lease.unpaced),
            "seeded_generators": len(self._entries),
            "seeded_batches_waiting": len(self._queue),
            "seeded_batches_dropped_total": self.dropped_batches,
        }

    def close(self) -> None:
        for executor in (self.render_thread, self.build_thread):
            executor.shutdown(wait=False, cancel_futures=True)
