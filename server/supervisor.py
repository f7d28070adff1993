"""Owns the producer processes and their rings: starts, watches, restarts, stops, cleans up.

Like gunicorn's arbiter, it runs in the main process: it creates every ring (and so is the only one to
unlink them), spawns one producer per ring, and a watchdog task checks them every `WATCH_INTERVAL_S`:
a dead producer is restarted on the same ring (it resumes at the ring's head, so the stream goes on),
a hung one (no heartbeat) is killed and restarted. A producer that exits with the boot-error code, or
more than `max_restarts` restarts within `restart_window_s`, halt the server instead of spinning.

Worker states only move forward: starting -> ready -> (dead -> starting ...) or failed.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from ..errors import EXIT_BOOT_ERROR, Halt
from ..limits import MAX_SHARD
from ..workers.places import City
from ..workers.producer import ProducerSpec, run_producer
from ..workers.ring import Ring, segment_name, sweep_stale_segments
from .config import ServerConfig

log = logging.getLogger("clickstream.supervisor")

WATCH_INTERVAL_S = 0.1
HUNG_AFTER_S = 10.0  # no heartbeat for this long: the producer is stuck; kill it
STOP_TIMEOUT_S = 5.0


@dataclass
class Worker:
    index: int
    ring: Ring
    process: BaseProcess | None = None
    state: str = "starting"  # starting, ready, failed
    restarts: int = 0
    last_exit_code: int | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "pid": self.process.pid if self.process else None,
            "state": self.state,
            "events_generated": self.ring.head,
            "ring_fill_ratio": round(self.ring.fill() / max(1, self.ring.capacity), 4),
            "ring_capacity_events": self.ring.capacity,
            "heartbeat_age_s": round(min(self.ring.heartbeat_age_s(), 1e9), 3),
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
        }


@dataclass(frozen=True)
class LiveStore:
    """The live site: the store's activity from `start_ms` (the wall clock at boot), worker w rendering
    shard `shard(w)` with its own partition of the store's users, so no user is in two workers' sessions (nor
    in two replicas' with INSTANCES: replica r's worker w has partition r * workers + w).

    Ids are unique per (shard, position), and a restart starts its positions at 0 again, so each boot takes
    new shards: consecutive boot seconds, times the workers, offset by the instance (`INSTANCE`: replicas
    behind one load balancer). Two boots share a shard only if they are 65,536 / workers seconds apart to
    the second (about 9 hours with two workers), or two instances' offsets meet.
    """

    start_ms: int
    first_shard: int
    workers: int
    replica: int = 0  # this replica's index among `replicas` that split the store's users (INSTANCES)
    replicas: int = 1

    @classmethod
    def at_boot(cls, instance: str, workers: int, now_ms: int, replica: int = 0, replicas: int = 1) -> LiveStore:
        offset = zlib.crc32(instance.encode()) if instance else 0
        return cls(now_ms // 1000 * 1000, (offset + now_ms // 1000 * workers) % (MAX_SHARD + 1), workers, replica,
                   replicas)

    def shard(self, worker: int) -> int:
        return (self.first_shard + worker) % (MAX_SHARD + 1)

    def partition(self, worker: int) -> int:
        """Which of the `partitions` parts of the store's users the worker's sessions are of."""
        return self.replica * self.workers + worker

    @property
    def partitions(self) -> int:
        return self.replicas * self.workers


@dataclass
class Supervisor:
    config: ServerConfig
    live: LiveStore
    workers: list[Worker] = field(default_factory=list)
    halted: str | None = None  # set once the server must stop because of its workers
    _restart_times: deque[float] = field(default_factory=deque)
    _cities: tuple[City, ...] = ()
    _watchdog: asyncio.Task[None] | None = None
    _context: Any = field(default_factory=lambda: multiprocessing.get_context("spawn"))

    async def start(self, cities: tuple[City, ...]) -> None:
        """Create the rings, start the producers and wait until each has written its first rows."""
        for name in sweep_stale_segments():
            log.warning("removed shared memory left by a dead server: /dev/shm/%s", name)
        self._cities = cities
        for index in range(self.config.workers):
            ring = Ring.create(self.config.ring_bytes, name=segment_name(os.getpid(), index))
            self.workers.append(Worker(index, ring))
        for worker in self.workers:
            self._spawn(worker)
        deadline = time.monotonic() + self.config.worker_ready_timeout_s
        while not all(w.state == "ready" for w in self.workers):
            self._check()
            if self.halted:
                raise Halt(self.halted, EXIT_BOOT_ERROR)
            if time.monotonic() > deadline:
                slow = [w.index for w in self.workers if w.state != "ready"]
                raise Halt(
                    f"workers {slow} did not become ready within {self.config.worker_ready_timeout_s:.0f} s: "
                    "check the log above for their errors, memory limits (each needs about 100 MB), "
                    "or lower --workers / --max-users",
                    EXIT_BOOT_ERROR,
                )
            await asyncio.sleep(WATCH_INTERVAL_S)
        self._watchdog = asyncio.create_task(self._watch(), name="clickstream-watchdog")

    def _spawn(self, worker: Worker) -> None:
        live = self.live
        spec = ProducerSpec(self.config.model, live.shard(worker.index), worker.ring.name, self._cities, os.getpid(),
                            live.start_ms, live.partition(worker.index), live.partitions)
        process = self._context.Process(
            target=run_producer, args=(spec,), name=f"clickstream-worker-{worker.index}", daemon=True
        )
        process.start()
        worker.process, worker.state = process, "starting"
        log.info("worker %d started (pid %d)", worker.index, process.pid)

    async def _watch(self) -> None:
        while not self.halted:
            self._check()
            await asyncio.sleep(WATCH_INTERVAL_S)

    def _check(self) -> None:
        for worker in self.workers:
            process = worker.process
            if process is None or worker.state == "failed":
                continue
            if process.exitcode is not None:
                self._on_exit(worker, process.exitcode)
            elif worker.state == "starting" and worker.ring.producer_pid == process.pid:
                # The producer records its pid once its generator is built, just before its first rows.
                worker.state = "ready"
                log.info("worker %d ready", worker.index)
            elif worker.state == "ready" and worker.ring.heartbeat_age_s() > HUNG_AFTER_S:
                log.error("worker %d sent no heartbeat for %.0f s: killing it", worker.index, HUNG_AFTER_S)
                process.kill()

    def _on_exit(self, worker: Worker, code: int) -> None:
        worker.last_exit_code = code
        if worker.process is not None:
            worker.process.join(0)
            worker.process.close()
            worker.process = None
        if code == EXIT_BOOT_ERROR:
            worker.state = "failed"
            self.halted = f"worker {worker.index} could not start (exit code {code}); see its error above"
            return
        now = time.monotonic()
        self._restart_times.append(now)
        while self._restart_times and self._restart_times[0] < now - self.config.restart_window_s:
            self._restart_times.popleft()
        if len(self._restart_times) > self.config.max_restarts:
            worker.state = "failed"
            self.halted = (
                f"workers died {len(self._restart_times)} times within {self.config.restart_window_s:.0f} s "
                f"(last: worker {worker.index}, exit code {code}): halting instead of restarting in a loop"
            )
            return
        log.warning("worker %d exited with code %s: restarting it", worker.index, code)
        worker.restarts += 1
        # Resume exactly where the dead producer stopped: the ring's head is its next position.
        self._spawn(worker)

    def healthy(self) -> tuple[bool, str]:
        """True while every worker is alive and its ring is being filled."""
        if self.halted:
            return False, self.halted
        for worker in self.workers:
            if worker.state != "ready":
                return False, f"worker {worker.index} is {worker.state}"
            age = worker.ring.heartbeat_age_s()
            if age > 2.0:
                return False, f"worker {worker.index} has not filled its ring for {age:.1f} s"
        return True, "ok"

    def snapshot(self) -> list[dict[str, Any]]:
        return [w.snapshot() for w in self.workers]

    async def stop(self) -> None:
        """Stop the producers and remove every ring. Safe to call more than once."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        for worker in self.workers:
            worker.ring.close_for_writing()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for worker in self.workers:
            process = worker.process
            if process is None:
                continue
            while process.exitcode is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if process.exitcode is None:
                process.kill()
                process.join(1)
        for worker in self.workers:
            try:
                worker.ring.close()
                worker.ring.unlink()
            except FileNotFoundError:
                pass
        self.workers.clear()

