"""Where the store's shoppers live and what they use: countries, name locales, email domains, devices.

All figures are approximate, rounded from public 2023-2024 estimates (e-commerce user counts, StatCounter
device and browser shares); they make the mix plausible, not exact. Countries are ISO 3166 alpha-2 codes.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .model import DEVICE_PROFILES

# Online shoppers (millions, approximate) of the biggest e-commerce markets: a store that sells
# everywhere draws its users' countries with these weights (not by population: China is ~30 % of
# online shoppers here, not of the world's people, and the United States ~9 %, not 4 %).
SHOPPERS_MILLIONS: Final[dict[str, float]] = {
    "CN": 900, "US": 275, "IN": 250, "ID": 180, "BR": 120, "JP": 100, "RU": 95, "MX": 75, "DE": 65,
    "GB": 60, "VN": 55, "FR": 50, "TR": 50, "PH": 50, "KR": 45, "TH": 40, "IT": 38, "ES": 35, "NG": 30,
    "EG": 28, "CA": 28, "PL": 28, "SA": 25, "AR": 25, "CO": 25, "MY": 22, "AU": 21, "UA": 15, "NL": 15,
    "CL": 13, "SE": 8, "BE": 8, "AE": 8, "PT": 7, "CH": 7, "AT": 6, "IL": 6,
}
# The Faker locale whose names a country's users get; a country without its own uses a neighbour's
# (MY: en_IN's mix of Malay, Chinese and Indian names is closer than en_US; EG: Arabic names of ar_SA).
NAME_LOCALES: Final[dict[str, str]] = {
    "CN": "zh_CN", "US": "en_US", "IN": "en_IN", "ID": "id_ID", "BR": "pt_BR", "JP": "ja_JP", "RU": "ru_RU",
    "MX": "es_MX", "DE": "de_DE", "GB": "en_GB", "VN": "vi_VN", "FR": "fr_FR", "TR": "tr_TR", "PH": "en_PH",
    "KR": "ko_KR", "TH": "th_TH", "IT": "it_IT", "ES": "es_ES", "NG": "en_NG", "EG": "ar_SA", "CA": "en_CA",
    "PL": "pl_PL", "SA": "ar_SA", "AR": "es_AR", "CO": "es_CO", "MY": "en_IN", "AU": "en_AU", "UA": "uk_UA",
    "NL": "nl_NL", "CL": "es_CL", "SE": "sv_SE", "BE": "nl_BE", "AE": "ar_AE", "PT": "pt_PT", "CH": "de_CH",
    "AT": "de_AT", "IL": "he_IL",
}
MARKETS: Final[tuple[str, ...]] = tuple(SHOPPERS_MILLIONS)

# Email domains and their shares: worldwide, then where a country's providers differ (shares approximate).
GLOBAL_EMAIL_DOMAINS: Final[tuple[tuple[str, float], ...]] = (
    ("gmail.com", 0.62), ("yahoo.com", 0.10), ("outlook.com", 0.09), ("hotmail.com", 0.09),
    ("icloud.com", 0.07), ("proton.me", 0.03),
)
COUNTRY_EMAIL_DOMAINS: Final[dict[str, tuple[tuple[str, float], ...]]] = {
    "US": (("gmail.com", 0.55), ("yahoo.com", 0.14), ("outlook.com", 0.09), ("hotmail.com", 0.07),
           ("icloud.com", 0.10), ("aol.com", 0.03), ("comcast.net", 0.02)),
    "GB": (("gmail.com", 0.45), ("hotmail.co.uk", 0.16), ("outlook.com", 0.10), ("yahoo.co.uk", 0.10),
           ("icloud.com", 0.09), ("btinternet.com", 0.05), ("sky.com", 0.05)),
    "DE": (("gmail.com", 0.32), ("web.de", 0.22), ("gmx.de", 0.20), ("t-online.de", 0.10),
           ("outlook.de", 0.08), ("yahoo.de", 0.04), ("icloud.com", 0.04)),
    "AT": (("gmail.com", 0.40), ("gmx.at", 0.22), ("outlook.com", 0.12), ("icloud.com", 0.08), ("aon.at", 0.08),
           ("web.de", 0.10)),
    "CH": (("gmail.com", 0.42), ("bluewin.ch", 0.22), ("gmx.ch", 0.12), ("outlook.com", 0.12),
           ("icloud.com", 0.12)),
    "FR": (("gmail.com", 0.42), ("orange.fr", 0.16), ("hotmail.fr", 0.12), ("free.fr", 0.09), ("sfr.fr", 0.07),
           ("laposte.net", 0.06), ("yahoo.fr", 0.05), ("icloud.com", 0.03)),
    "IT": (("gmail.com", 0.48), ("libero.it", 0.18), ("hotmail.it", 0.12), ("yahoo.it", 0.10),
           ("virgilio.it", 0.07), ("icloud.com", 0.05)),
    "ES": (("gmail.com", 0.58), ("hotmail.es", 0.22), ("yahoo.es", 0.10), ("outlook.es", 0.06),
           ("icloud.com", 0.04)),
    "NL": (("gmail.com", 0.48), ("hotmail.com", 0.18), ("outlook.com", 0.12), ("ziggo.nl", 0.10),
           ("kpnmail.nl", 0.07), ("icloud.com", 0.05)),
    "PL": (("gmail.com", 0.42), ("wp.pl", 0.20), ("o2.pl", 0.16), ("onet.pl", 0.14), ("interia.pl", 0.08)),
    "CN": (("qq.com", 0.48), ("163.com", 0.25), ("126.com", 0.10), ("sina.com", 0.07), ("foxmail.com", 0.05),
           ("outlook.com", 0.05)),
    "JP": (("gmail.com", 0.45), ("yahoo.co.jp", 0.25), ("docomo.ne.jp", 0.10), ("icloud.com", 0.10),
           ("ezweb.ne.jp", 0.05), ("outlook.jp", 0.05)),
    "KR": (("naver.com", 0.55), ("gmail.com", 0.25), ("daum.net", 0.12), ("hanmail.net", 0.08)),
    "RU": (("mail.ru", 0.38), ("yandex.ru", 0.30), ("gmail.com", 0.22), ("rambler.ru", 0.05), ("bk.ru", 0.05)),
    "UA": (("gmail.com", 0.50), ("ukr.net", 0.30), ("i.ua", 0.08), ("meta.ua", 0.05), ("outlook.com", 0.07)),
    "BR": (("gmail.com", 0.66), ("hotmail.com", 0.16), ("outlook.com", 0.08), ("yahoo.com.br", 0.06),
           ("uol.com.br", 0.04)),
    "MX": (("gmail.com", 0.60), ("hotmail.com", 0.22), ("outlook.com", 0.10), ("yahoo.com.mx", 0.08)),
    "IN": (("gmail.com", 0.80), ("yahoo.co.in", 0.08), ("rediffmail.com", 0.05), ("outlook.com", 0.05),
           ("hotmail.com", 0.02)),
    "TR": (("gmail.com", 0.66), ("hotmail.com", 0.20), ("outlook.com", 0.06), ("yandex.com.tr", 0.08)),
    "AU": (("gmail.com", 0.50), ("outlook.com", 0.12), ("hotmail.com", 0.12), ("bigpond.com", 0.10),
           ("icloud.com", 0.10), ("yahoo.com.au", 0.06)),
    "CA": (("gmail.com", 0.55), ("hotmail.com", 0.14), ("outlook.com", 0.10), ("yahoo.ca", 0.08),
           ("icloud.com", 0.08), ("shaw.ca", 0.05)),
}

# Where a country's devices differ from the worldwide mix (DEVICE_PROFILES): (desktop share, tablet share,
# iOS share of phones and tablets, macOS share of desktops, Samsung Internet factor on Android phones).
# Approximate, after StatCounter: iPhones dominate phones in the US, GB and JP and are rare in IN, BR and
# ID; Germans and the French shop on desktops more; Koreans use Samsung Internet.
DeviceMix = tuple[float, float, float, float, float]
COUNTRY_DEVICE_MIX: Final[dict[str, DeviceMix]] = {
    "US": (0.40, 0.07, 0.57, 0.28, 1.0), "GB": (0.36, 0.09, 0.52, 0.22, 1.0), "JP": (0.34, 0.05, 0.68, 0.15, 0.5),
    "CA": (0.40, 0.07, 0.54, 0.24, 1.0), "AU": (0.38, 0.08, 0.55, 0.24, 1.0), "DE": (0.52, 0.07, 0.36, 0.16, 1.0),
    "FR": (0.46, 0.07, 0.33, 0.13, 1.0), "CH": (0.48, 0.07, 0.50, 0.25, 1.0), "KR": (0.34, 0.04, 0.25, 0.08, 4.0),
    "CN": (0.35, 0.04, 0.22, 0.06, 0.2), "IN": (0.20, 0.01, 0.04, 0.03, 1.0), "BR": (0.30, 0.02, 0.12, 0.05, 1.0),
    "ID": (0.18, 0.01, 0.09, 0.03, 1.0), "MX": (0.30, 0.03, 0.22, 0.06, 1.0), "VN": (0.25, 0.02, 0.30, 0.05, 1.0),
    "NG": (0.15, 0.01, 0.08, 0.04, 1.0), "EG": (0.22, 0.02, 0.10, 0.03, 1.0), "PH": (0.25, 0.02, 0.14, 0.05, 1.0),
}


def check_store_countries(codes: tuple[str, ...]) -> None:
    """ValueError naming the codes the model has no market for."""
    unknown = [code for code in codes if code not in SHOPPERS_MILLIONS]
    if not codes or unknown:
        known = ",".join(sorted(MARKETS))
        raise ValueError(f"ISO country codes among {known}; unknown: {','.join(unknown) or '(none)'}")


def parse_store_countries(text: str) -> tuple[str, ...]:
    """`US,gb, DE` -> ("DE", "GB", "US"): sorted and deduplicated, so equal sets give equal configs."""
    codes = tuple(sorted({part.strip().upper() for part in text.split(",") if part.strip()}))
    check_store_countries(codes)
    return codes


def _profile_groups() -> dict[str, np.ndarray]:
    """Masks over DEVICE_PROFILES: the groups a country's mix reweights."""
    kind = np.array([p[0] for p in DEVICE_PROFILES])
    apple = np.array([p[2].startswith(("iPhone", "iPad", "macOS")) for p in DEVICE_PROFILES])
    return {"mobile_ios": (kind == "mobile") & apple, "mobile_other": (kind == "mobile") & ~apple,
            "tablet_ios": (kind == "tablet") & apple, "tablet_other": (kind == "tablet") & ~apple,
            "desktop_mac": (kind == "desktop") & apple, "desktop_other": (kind == "desktop") & ~apple}


def profile_shares(country: str) -> np.ndarray:
    """The share of each DEVICE_PROFILES row among a country's users (sums to 1)."""
    base = np.array([p[3] for p in DEVICE_PROFILES], dtype=np.float64)
    mix = COUNTRY_DEVICE_MIX.get(country)
    if mix is None:
        return np.asarray(base / base.sum())
    desktop, tablet, ios, mac, samsung = mix
    weight = base.copy()
    weight[np.array([p[1] == "Samsung Internet" for p in DEVICE_PROFILES])] *= samsung
    targets = {"mobile_ios": (1 - desktop - tablet) * ios, "mobile_other": (1 - desktop - tablet) * (1 - ios),
               "tablet_ios": tablet * ios, "tablet_other": tablet * (1 - ios),
               "desktop_mac": desktop * mac, "desktop_other": desktop * (1 - mac)}
    shares = np.zeros_like(weight)
    for group, mask in _profile_groups().items():
        shares[mask] = targets[group] * weight[mask] / weight[mask].sum()
    return np.asarray(shares / shares.sum())
