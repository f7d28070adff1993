"""Shoppers that look real: countries by online shoppers, local names, varied emails, ages, device mixes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from clickstream.workers.catalog import Catalog
from clickstream.workers.markets import SHOPPERS_MILLIONS
from clickstream.workers.model import DEVICE_PROFILES, ModelConfig
from clickstream.workers.people import email_number, person_names
from clickstream.workers.places import load_cities
from clickstream.workers.users import AGE_BANDS

from .conftest import ServerProcess
from .test_http import events, get

STORE = ModelConfig(seed=11, max_users=200_000, max_products=20_000)


@pytest.fixture(scope="module")
def catalog() -> Iterator[Catalog]:
    yield Catalog.build(STORE, load_cities(STORE), with_names=True)


@pytest.fixture(scope="module")
def records(catalog: Catalog) -> list[dict[str, object]]:
    return [catalog.user_record(u, 0) for u in range(6000)]


def test_ages_follow_shoppers_bands_with_no_spike(catalog: Catalog) -> None:
    age = catalog.users.demographics(np.arange(200_000))[0]
    share = np.bincount(age, minlength=81) / age.size
    assert age.min() == 18 and age.max() == 80
    assert share.max() < 0.03  # was 6.66 % at exactly 18
    assert abs(share[18] - share[19]) < 0.004
    for lo, hi, expected in AGE_BANDS:
        assert abs(share[lo:hi + 1].sum() - expected) < 0.01, (lo, hi)


def test_countries_are_weighted_by_online_shoppers(catalog: Catalog) -> None:
    users = catalog.users
    codes = Counter(users.countries[c] for c in users.country(np.arange(200_000)))
    total = sum(SHOPPERS_MILLIONS.values())
    for code in ("CN", "US", "DE", "BR"):
        assert abs(codes[code] / 200_000 - SHOPPERS_MILLIONS[code] / total) < 0.01, code
    cities = users.city(np.arange(20_000))
    assert all(catalog.cities[c].country_code == users.countries[k]
               for c, k in zip(cities, users.country(np.arange(20_000)), strict=True))


def test_iphones_share_of_phones_differs_by_country(catalog: Catalog) -> None:
    users = catalog.users
    ids = np.arange(200_000)
    country, profile = users.country(ids), users.profile(ids)
    mobile = np.array([p[0] == "mobile" for p in DEVICE_PROFILES])[profile]
    iphone = np.array([p[2].startswith("iPhone") for p in DEVICE_PROFILES])[profile]

    def ios_share(code: str) -> float:
        mine = (country == users.countries.index(code)) & mobile
        return float(iphone[mine].mean())

    assert ios_share("US") > 0.5 and ios_share("JP") > 0.6
    assert ios_share("IN") < 0.1 and ios_share("BR") < 0.2


def test_emails_are_unique_ascii_and_varied_by_country(records: list[dict[str, object]]) -> None:
    emails = [str(r["email"]) for r in records]
    assert len(set(emails)) == len(emails) and all(e.isascii() and e.count("@") == 1 for e in emails)
    domains = Counter(e.split("@")[1] for e in emails)
    assert 0.3 < domains["gmail.com"] / len(emails) < 0.7 and len(domains) > 30

    def top_domains(code: str) -> set[str]:
        counts = Counter(str(r["email"]).split("@")[1] for r in records if r["country"] == code)
        return {d for d, _n in counts.most_common(4)}

    assert {"web.de", "gmx.de"} <= top_domains("DE") and "qq.com" in top_domains("CN")
    assert "gmail.com" in top_domains("US") and "web.de" not in top_domains("US")
    forms = Counter("." in e.split("@")[0] for e in emails)
    assert forms[True] > 0.2 * len(emails) and forms[False] > 0.2 * len(emails)


def test_email_numbers_are_unique_per_user() -> None:
    numbers = [email_number(u, 7) for u in range(300_000)]
    assert len(set(numbers)) == len(numbers) and min(numbers) >= 10


def test_names_come_from_the_locale_of_the_users_country(records: list[dict[str, object]]) -> None:
    pools = person_names(("DE", "JP", "US"))
    german = [r for r in records if r["country"] == "DE"]
    assert german and all(r["last_name"] in pools["DE"].last_male + pools["DE"].last_female for r in german)
    japanese = [r for r in records if r["country"] == "JP"]
    assert japanese and all(not str(r["first_name"]).isascii() for r in japanese)
    assert all(str(r["email"]).isascii() for r in japanese)
    assert not any(r["last_name"] in pools["US"].last_male for r in japanese)


def test_product_names_fit_their_category_and_are_mostly_distinct(catalog: Catalog) -> None:
    assert catalog.names is not None and len(set(catalog.names.brands)) == len(catalog.names.brands) == 400
    products = [catalog.product_record(p) for p in range(catalog.n_products)]
    names = [str(p["name"]) for p in products]
    assert len(set(names)) > 0.99 * len(names)
    assert all(str(p["name"]).startswith(str(p["brand"])) for p in products[:1000])


def test_an_unknown_store_country_is_a_one_line_config_error() -> None:
    for args, env, named in ((["--store-countries", "US,XX"], {}, "--store-countries"),
                             ([], {"STORE_COUNTRIES": "XX"}, "environment variable STORE_COUNTRIES")):
        result = subprocess.run([sys.executable, "-m", "clickstream.cli", "serve", "--port", "0", *args],
                                capture_output=True, text=True, timeout=60, env={**_env(), **env})
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0] and "XX" in lines[0], result.stderr


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("STORE_COUNTRIES", "PORT")}


def test_a_german_store_has_german_shoppers_and_sessions(fresh_server: Any) -> None:
    server: ServerProcess = fresh_server(env={"STORE_COUNTRIES": "DE"})
    german = person_names(("DE",))["DE"]
    users = events(get(server, "/stream/users?count=200&rate=5000")[2])
    assert {u["country"] for u in users} == {"DE"}
    assert all(u["first_name"] in german.female + german.male for u in users)
    assert {"Berlin", "Hamburg"} & {u["city"] for u in users}
    rows = events(get(server, "/stream/interactions?seed=3&count=2000")[2])
    assert {r["country"] for r in rows} == {"DE"}
    assert all(r["device_info"] == f"{r['device_type']} - {r['browser']}" and r["os"] for r in rows)
    assert server.json("/schema")["json_schema"]["properties"]["os"]["type"] == "string"
