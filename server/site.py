"""What the routes share, built once by the server's lifecycle (main.py)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..workers.catalog import Catalog
from .config import ServerConfig
from .metrics import Metrics
from .rings import SiteRings
from .sources import GeneratorPool
from .stream import StreamSettings
from .supervisor import Supervisor


@dataclass
class Site:
    config: ServerConfig
    supervisor: Supervisor
    rings: SiteRings
    catalog: Catalog
    generators: GeneratorPool
    metrics: Metrics
    settings: StreamSettings


SITE = web.AppKey("site", Site)
