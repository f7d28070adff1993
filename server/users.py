"""The user catalog as NDJSON lines, rendered off the event loop and cached by block.

A user's record is Python work (a dict, two dates, a JSON encoding: about 25 us per user), which on the
event loop slowed every live stream: five user streams at 5,000/s cut a live stream at 10,000/s to 8,619/s.
Blocks of `BLOCK_USERS` users are rendered on one thread of their own and cached (a record depends only
on the user, the live site's start and whether truth is asked for), so streams that read the same users
share one rendering and the loop only slices bytes. The cache is bounded (`MAX_BLOCKS`, about 600 bytes per user).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import ujson

from ..workers.catalog import Catalog

BLOCK_USERS = 1024
MAX_BLOCKS = 64  # at most ~40 MB of rendered users


class UserLines:
    """The store's users as NDJSON lines, as of `as_of_ms` (the live site's start), with or without truth."""

    def __init__(self, catalog: Catalog, as_of_ms: int) -> None:
        self.catalog = catalog
        self.as_of_ms = as_of_ms
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="clickstream-users")
        # (with truth, block) -> (the block's lines, where each line starts: BLOCK_USERS + 1 offsets)
        self._blocks: OrderedDict[tuple[bool, int], asyncio.Future[tuple[bytes, np.ndarray]]] = OrderedDict()

    def _render_block(self, block: int, truth: bool) -> tuple[bytes, np.ndarray]:
        """Runs in the users thread."""
        first = block * BLOCK_USERS
        users = range(first, min(first + BLOCK_USERS, self.catalog.n_users))
        lines = [ujson.dumps(self.catalog.user_record(u, self.as_of_ms, truth), ensure_ascii=False,
                             escape_forward_slashes=False).encode() + b"\n" for u in users]
        offsets = np.zeros(len(lines) + 1, dtype=np.int64)
        np.cumsum([len(line) for line in lines], out=offsets[1:])
        return b"".join(lines), offsets

    def _block(self, block: int, truth: bool) -> asyncio.Future[tuple[bytes, np.ndarray]]:
        key = (truth, block)
        future = self._blocks.get(key)
        if future is None or (future.done() and future.exception() is not None):
            future = asyncio.get_running_loop().run_in_executor(self.thread, self._render_block, block, truth)
            self._blocks[key] = future
            while len(self._blocks) > MAX_BLOCKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(key)
        return future

    async def lines(self, first: int, count: int, truth: bool) -> bytes:
        """Users first .. first + count - 1 (wrapping around the catalog) as NDJSON lines."""
        n = self.catalog.n_users
        parts: list[bytes] = []
        user = first % n
        while count > 0:
            block, index = divmod(user, BLOCK_USERS)
            data, offsets = await asyncio.shield(self._block(block, truth))
            take = min(count, len(offsets) - 1 - index)
            parts.append(data[offsets[index]:offsets[index + take]])
            count -= take
            user = (user + take) % n
        return b"".join(parts)

    def close(self) -> None:
        self.thread.shutdown(wait=False, cancel_futures=True)
