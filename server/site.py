"""What the routes share, built once by the server's lifecycle (main.py)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..workers.catalog import Catalog
from .config import ServerConfig
from .limits import ConnectionGuard
from .metrics import Metrics
from .rings import SiteRings
from .seeded import SeededPool
from .stream import StreamSettings
from .supervisor import LiveStore, Supervisor
from .users import UserLines


@dataclass
class Site:
    config: ServerConfig
    supervisor: Supervisor
    rings: SiteRings
    catalog: Catalog
    generators: SeededPool
    metrics: Metrics
    settings: StreamSettings
    users: UserLines
    guard: ConnectionGuard
    live: LiveStore


SITE = web.AppKey("site", Site)
