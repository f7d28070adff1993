"""Users' names and email addresses: pools from Faker's locale of each country, filled once per process.

Faker's per-locale name lists are read directly (no call per name, except where a locale draws names its
own way): the pools of the 37 default markets take about 0.35 s. Every name keeps an ASCII spelling for
email addresses: Latin names lose their accents, Cyrillic and Greek ones are transliterated, Japanese
ones come with Faker's own romaji; names in other scripts (Chinese, Korean, Arabic, Hebrew, Thai) take a
romanized name of their language (Faker's, or ROMANIZED), not a spelling of that very name: an email
handle need not spell its owner's name.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

from .markets import COUNTRY_EMAIL_DOMAINS, GLOBAL_EMAIL_DOMAINS, NAME_LOCALES

FALLBACK_LOCALE = "en_US"  # Faker's own fallback: en_CA, en_AU and en_PH have no person data of their own
# Letters NFKD does not split into a base letter and an accent.
LATIN_EXTRA = {"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d",
               "þ": "th", "ı": "i"}
CYRILLIC_GREEK = {
    "а": "a", "б": "b", "в": "v", "г": "g", "ґ": "g", "д": "d", "е": "e", "ё": "e", "є": "ye", "ж": "zh",
    "з": "z", "и": "i", "і": "i", "ї": "yi", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th", "ι": "i", "κ": "k",
    "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p", "ρ": "r", "σ": "s", "ς": "s", "τ": "t",
    "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps", "ω": "o",
}
TO_LATIN = str.maketrans({**LATIN_EXTRA, **CYRILLIC_GREEK})
NOT_A_TO_Z = re.compile("[^a-z]+")
# Local-part forms of an email address and their shares. Every form ends in the user's email number (see
# `email_number`), which is what makes addresses unique; CN's are mostly numbers alone (QQ-style).
EMAIL_FORMS: tuple[tuple[str, float], ...] = (
    ("{first}.{last}", 0.30), ("{first}{last}", 0.17), ("{f}.{last}", 0.11), ("{first}_{last}", 0.09),
    ("{first}", 0.13), ("{last}{f}", 0.08), ("{f}{last}", 0.07), ("{last}.{first}", 0.05),
)
COUNTRY_EMAIL_FORMS: dict[str, tuple[tuple[str, float], ...]] = {
    "CN": (("", 0.45), ("{first}{last}", 0.25), ("{last}{first}", 0.20), ("{first}.{last}", 0.10)),
}


# Romanized names for email handles where Faker's names are in a script `_ascii` cannot spell and Faker has
# no romanized list: (female, male, last), common names of the language.
ROMANIZED: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "ko_KR": (("jiyeon", "seoyeon", "minji", "eunji", "yuna", "soyeon", "hayoon", "jimin", "sujin", "hyejin"),
              ("minjun", "seojun", "jihoon", "hyunwoo", "dohyun", "junho", "sungmin", "taeyang", "jaewon", "donghyun"),
              ("kim", "lee", "park", "choi", "jung", "kang", "cho", "yoon", "jang", "lim", "han", "shin", "seo")),
    "ar_SA": (("noura", "fatima", "sara", "aisha", "reem", "maha", "lama", "hessa", "nouf", "amal"),
              ("mohammed", "ahmed", "abdullah", "khalid", "omar", "faisal", "fahad", "sultan", "nasser", "saud"),
              ("alharbi", "alotaibi", "alghamdi", "alzahrani", "alqahtani", "alshehri", "aldosari", "almutairi")),
    "he_IL": (("noa", "tamar", "yael", "maya", "shira", "michal", "adi", "noya", "talia", "roni"),
              ("david", "yosef", "avi", "itai", "noam", "eitan", "omer", "ariel", "daniel", "yonatan"),
              ("cohen", "levi", "mizrahi", "peretz", "biton", "dahan", "avraham", "friedman", "katz", "azoulay")),
    "th_TH": (("siriporn", "malee", "kanya", "pimchanok", "suda", "nattaya", "wanida", "ploy", "nok", "ratana"),
              ("somchai", "somsak", "anan", "prasert", "wichai", "kittisak", "narong", "thanakorn", "chaiwat"),
              ("saetang", "wongsawat", "srisuk", "chaiyaporn", "thongdee", "kaewkla", "boonmee", "rattanakul")),
}


@dataclass(frozen=True)
class PersonNames:
    """One country's name pools; `*_ascii` are the same names' ASCII spellings, index for index. Last names
    are by gender where the language inflects them (Russian, Czech, Greek ...), else the same pool twice."""

    female: tuple[str, ...]
    male: tuple[str, ...]
    last_female: tuple[str, ...]
    last_male: tuple[str, ...]
    female_ascii: tuple[str, ...]
    male_ascii: tuple[str, ...]
    last_female_ascii: tuple[str, ...]
    last_male_ascii: tuple[str, ...]

    def pools(self, male: bool) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """(first names, last names, their ASCII spellings) for one gender."""
        if male:
            return self.male, self.last_male, self.male_ascii, self.last_male_ascii
        return self.female, self.last_female, self.female_ascii, self.last_female_ascii


def person_names(countries: tuple[str, ...]) -> dict[str, PersonNames]:
    """Pools for the given countries, by ISO code (a country shares its locale's pools with its neighbours)."""
    by_locale: dict[str, PersonNames] = {}
    for country in countries:
        locale = NAME_LOCALES.get(country, FALLBACK_LOCALE)
        if locale not in by_locale:
            by_locale[locale] = _locale_names(locale)
    return {country: by_locale[NAME_LOCALES.get(country, FALLBACK_LOCALE)] for country in countries}


@cache
def _provider(locale: str) -> Any:
    """Faker's person provider of the locale, as an instance (some of its lists are properties), on a bare
    generator: a whole Faker per locale costs ~60 ms, this a fraction of one."""
    from faker.generator import Generator  # imported lazily: workers that only emit interactions never need it

    try:
        module = importlib.import_module(f"faker.providers.person.{locale}")
    except ModuleNotFoundError:
        module = importlib.import_module(f"faker.providers.person.{FALLBACK_LOCALE}")
    generator = Generator()
    generator.seed_instance(0)
    return module.Provider(generator)


# Per pool: the provider method that draws it and the lists that method reads, first found first.
POOLS = (("first_name_female", ("first_names_female", "first_names")),
         ("first_name_male", ("first_names_male", "first_names")),
         ("last_name_female", ("last_names_female", "last_names")),
         ("last_name_male", ("last_names_male", "last_names")))
SAMPLED_NAMES = 600  # draws of a pool whose locale draws names its own way (pl_PL) instead of from a list


def _names(provider: Any, method: str, attributes: tuple[str, ...]) -> tuple[str, ...]:
    """Distinct names of a pool, in Faker's order: its list (a tuple, or an ordered dict of weights), or,
    where the locale overrides how the pool is drawn, that many draws."""
    from faker.providers.person import Provider as BasePerson

    last_name_overridden = type(provider).last_name is not BasePerson.last_name
    if method.startswith("last_name") and last_name_overridden:
        values: Any = (getattr(provider, method)() for _ in range(SAMPLED_NAMES))
    else:
        values = next(getattr(provider, a) for a in attributes if getattr(provider, a, None))
    return tuple(dict.fromkeys(str(v) for v in values))


def _locale_names(locale: str) -> PersonNames:
    provider = _provider(locale)
    if hasattr(provider, "last_name_pairs"):  # ja_JP: (kanji, kana, romaji)
        pairs = [tuple(dict.fromkeys(getattr(provider, name))) for name in
                 ("first_name_female_pairs", "first_name_male_pairs", "last_name_pairs", "last_name_pairs")]
        return PersonNames(*(tuple(p[0] for p in pool) for pool in pairs),
                           *(tuple(_ascii(p[2]) for p in pool) for pool in pairs))
    native = [_names(provider, method, attributes) for method, attributes in POOLS]
    latin_pools = _latin_pools(locale, provider)
    latin = [tuple(_ascii(name) or _ascii(fallback[i % len(fallback)]) for i, name in enumerate(pool))
             for pool, fallback in zip(native, latin_pools, strict=True)]
    return PersonNames(*native, *latin)


def _latin_pools(locale: str, provider: Any) -> list[tuple[str, ...]]:
    """Where a name `_ascii` cannot spell takes its email handle from: the locale's romanized names."""
    if hasattr(provider, "last_romanized_names"):  # zh_CN, zh_TW
        first = _names(provider, "first_romanized_name", ("first_romanized_names",))
        last = _names(provider, "last_romanized_name", ("last_romanized_names",))
        return [first, first, last, last]
    if locale in ROMANIZED:
        female, male, last = ROMANIZED[locale]
        return [female, male, last, last]
    fallback = _provider(FALLBACK_LOCALE)
    return [_names(fallback, method, attributes) for method, attributes in POOLS]


def _ascii(name: str) -> str:
    """Lower-case a-z only: accents dropped, Cyrillic and Greek transliterated; "" for other scripts."""
    text = unicodedata.normalize("NFKD", name.lower()).translate(TO_LATIN)
    if not text[:1].isascii():  # a name in another script: nothing to spell it with
        return ""
    return NOT_A_TO_Z.sub("", text)


def email_number(user: int, seed: int) -> int:
    """A number unique to the user, with as many digits as the user id + 10: ids are scrambled within each
    decade [10**k, 10**(k + 1)) by an affine map (7919 is prime to 9 * 10**k, so the map is a bijection)."""
    n = user + 10
    low = 10 ** (len(str(n)) - 1)
    width = 9 * low
    return int(low + ((n - low) * 7919 + seed * 2654435761) % width)


def email_address(first: str, last: str, number: int, form_u: float, domain_u: float, country: str) -> str:
    """`<local part><number>@<domain>`. The local part before the number has no digit and the number no
    leading zero, so distinct numbers give distinct addresses."""
    form = _pick(COUNTRY_EMAIL_FORMS.get(country, EMAIL_FORMS), form_u)
    domain = _pick(COUNTRY_EMAIL_DOMAINS.get(country, GLOBAL_EMAIL_DOMAINS), domain_u)
    first, last = first or "user", last or "shopper"  # never empty, so a local part never ends in a digit
    local = form.format(first=first, last=last, f=first[:1])
    return f"{local}{number}@{domain}"


def _pick(choices: tuple[tuple[str, float], ...], u: float) -> str:
    """The choice whose share covers u (u uniform in [0, 1))."""
    total = sum(share for _c, share in choices)
    running = 0.0
    for choice, share in choices:
        running += share / total
        if u < running:
            return choice
    return choices[-1][0]
