"""Seeded, deterministic generator of Flex orders and devices.

Records look like what HPE's samples show, with the irregularities a tap must survive: optional
fields that are sometimes absent, several renderings of the same instant (``Z``, milliseconds,
``+00:00``), runs of records sharing one ``updatedAt``, and company names that appear both as
reseller and distributor (so the transform's ``partnerName`` union is not a plain concatenation).

Record timestamps (``createdAt``/``updatedAt``, ``orderStartDate``) lie before 2026-06-01;
``orderEndDate`` may lie in the future, as in HPE's sample (``2035-01-01T00:00:00Z``).
"""

from __future__ import annotations

import calendar
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

EPOCH_2019 = calendar.timegm((2019, 1, 1, 0, 0, 0)) * 1_000_000
CUTOFF_2026_06 = calendar.timegm((2026, 6, 1, 0, 0, 0)) * 1_000_000
DAY_US = 86_400 * 1_000_000
# FlexDataGenerator.order / .device: (rng, index, previous (updatedAt, µs)) -> record.
_Maker = Callable[[random.Random, int, "tuple[str, int] | None"], dict[str, Any]]

DEVICE_TYPES = [
    "ALS",
    "AP",
    "BLE",
    "COMPUTE",
    "CONTROLLER",
    "DHCI_COMPUTE",
    "DHCI_STORAGE",
    "EINAR",
    "EINR",
    "GATEWAY",
    "IAP",
    "LTE_MODEM",
    "MC",
    "STORAGE",
    "SWITCH",
    "NW_THIRD_PARTY",
    "PCE",
    "SD_WAN_GW",
    "OPSRAMP_SAAS",
    "SD_SAAS",
    "SENSOR",
    "BRIDGES",
    "UNKNOWN",
]

# (model, make, deviceType, part-number prefix, relative weight)
MODELS: tuple[tuple[str, str, str, str, int], ...] = (
    ("HPE ProLiant DL380 Gen11", "HPE", "COMPUTE", "P52534", 14),
    ("HPE ProLiant DL360 Gen11", "HPE", "COMPUTE", "P51930", 10),
    ("HPE ProLiant DL325 Gen11", "HPE", "COMPUTE", "P58691", 5),
    ("HPE Compute 6030X", "HPE", "COMPUTE", "JK130", 3),
    ("HPE Synergy 480 Gen10 Plus", "HPE", "COMPUTE", "P39526", 3),
    ("HPE Alletra Storage MP", "HPE", "STORAGE", "S2A87", 6),
    ("HPE Alletra 6030", "HPE", "DHCI_STORAGE", "R7H92", 3),
    ("HPE Alletra dHCI Compute", "HPE", "DHCI_COMPUTE", "R7J01", 2),
    ("HPE Nimble Storage HF20", "Nimble", "STORAGE", "Q8H72", 2),
    ("HPE Apollo 4200 Gen10 Plus", "HPE", "COMPUTE", "P40391", 2),
    ("Aruba CX 6300M", "Aruba", "SWITCH", "JL658", 12),
    ("Aruba CX 8325", "Aruba", "SWITCH", "JL624", 4),
    ("Aruba AP-535", "Aruba", "AP", "JZ336", 10),
    ("Aruba AP-655", "Aruba", "AP", "R7J38", 6),
    ("Aruba 9004 Gateway", "Aruba", "GATEWAY", "R1B22", 3),
    ("Aruba 7210 Mobility Controller", "Aruba", "CONTROLLER", "JW743", 2),
    ("Aruba EdgeConnect EC-XS", "Aruba", "SD_WAN_GW", "R6W05", 2),
    ("Aruba IoT Sensor AS-100", "Aruba", "SENSOR", "R3K11", 1),
    ("Cisco Catalyst 9300", "Cisco", "NW_THIRD_PARTY", "C9300", 1),
    ("OpsRamp SaaS Subscription", "HPE", "OPSRAMP_SAAS", "S1R40", 1),
    ("Generic Appliance", "Unknown", "UNKNOWN", "XX000", 1),
)
_MODEL_WEIGHTS = tuple(m[4] for m in MODELS)
OUIS = ("CA:35:DC", "8A:26:D2", "35:CA:68", "94:40:C9", "20:4C:03", "B8:83:03", "EC:EB:B8")
SERIAL_PREFIXES = ("CN", "SG", "MX", "CZ", "TW", "US", "2M")
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_WORDS_A = [
    "Acme",
    "Blue",
    "Summit",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Pioneer",
    "Granite",
    "Harbor",
    "Silver",
    "Redwood",
    "Atlas",
    "Cobalt",
    "Meridian",
    "Vertex",
    "Orion",
    "Keystone",
    "Lakeside",
    "Evergreen",
    "Polar",
    "Sterling",
    "Crescent",
    "Falcon",
    "Beacon",
    "Riverbend",
    "Quantum",
    "Horizon",
    "Ironwood",
    "Sunrise",
    "Maple",
]
_WORDS_B = [
    "Systems",
    "Networks",
    "Holdings",
    "Logistics",
    "Health",
    "Bank",
    "Retail",
    "Energy",
    "Media",
    "Foods",
    "Pharma",
    "Motors",
    "Insurance",
    "Telecom",
    "Analytics",
    "Manufacturing",
    "Solutions",
    "Partners",
    "Distribution",
    "Resellers",
]
_SUFFIXES = ("Inc.", "LLC", "Ltd.", "GmbH", "S.A.", "B.V.", "Pty Ltd", "plc", "AG", "K.K.")
_REGIONS = ("APJ", "APUS", "EMEA", "NA", "LATAM")
_SITES = ("fra", "lon", "nyc", "sjc", "sin", "syd", "tyo", "gru", "ams", "dfw")
_TAGS = (
    ("env", ("prod", "dev", "test", "staging")),
    ("site", _SITES),
    ("costCenter", ("CC-100", "CC-200", "CC-310", "CC-999")),
    ("owner", ("it-ops", "network", "storage-team", "finance")),
    ("category1", ("value1", "value2")),
)


def render_ts(micros: int, style: int) -> tuple[str, int]:
    """Render an instant in style 0-3 (generated data) or 4 (mutations), with its canonical value.

    The canonical value is truncated to the precision rendered, so parsing the string back gives
    exactly the stored integer (comparisons and sorting use the integer, never the string).
    """
    sec, frac = divmod(micros, 1_000_000)
    t = time.gmtime(sec)
    date = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
    base = f"{date}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    if style == 0:
        return base + "Z", sec * 1_000_000
    if style == 1:
        ms = frac // 1000
        return f"{base}.{ms:03d}Z", sec * 1_000_000 + ms * 1000
    if style == 2:
        return base + "+00:00", sec * 1_000_000
    if style == 3:
        return f"{base}.{frac:06d}+00:00", micros
    return f"{base}.{frac:06d}Z", micros


def _pick_style(rng: random.Random) -> int:
    r = rng.random()
    return 0 if r < 0.45 else 1 if r < 0.8 else 2 if r < 0.9 else 3


@dataclass
class Pools:
    """Company, partner and billing-account name sets shared by orders and devices."""

    companies: list[str]
    resellers: list[str]
    distributors: list[str]
    accounts: list[tuple[str, str]]  # (billingAccountId, billingAccountName)


def make_pools(seed: int, orders: int) -> Pools:
    """Build the name pools; resellers and distributors deliberately share some companies."""
    rng = random.Random(f"pools:{seed}")
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < 240:
        n = f"{rng.choice(_WORDS_A)} {rng.choice(_WORDS_B)} {rng.choice(_SUFFIXES)}"
        if n not in seen:
            seen.add(n)
            names.append(n)
    names[0] = "Some Company Inc."
    resellers = [*names[:40], "1st Street Resellers", "Friendly Reseller LLC"]
    distributors = [*names[30:55], "HPE Distributions"]  # names[30:40] are both
    n_accounts = max(1, min(150, (orders + 2) // 3)) if orders > 0 else 20
    accounts = []
    for i in range(n_accounts):
        region = rng.choice(_REGIONS)
        acc_id = f"HP-{region}-{rng.randrange(100, 1000)}-{rng.randrange(10**5):05d}-{i:03d}"
        accounts.append((acc_id, names[60 + (i % 180)]))
    return Pools(names[:200], resellers, distributors, accounts)


@dataclass
class FlexDataGenerator:
    """Deterministic record factory for one workspace (same seed and counts, same records)."""

    seed: int
    orders_hint: int = 0
    pools: Pools = field(init=False)

    def __post_init__(self) -> None:
        self.pools = make_pools(self.seed, self.orders_hint)

    def _record_times(self, rng: random.Random, prev: tuple[str, int] | None) -> dict[str, Any]:
        created = EPOCH_2019 + rng.randrange(CUTOFF_2026_06 - EPOCH_2019 - 30 * DAY_US)
        c_txt, c_us = render_ts(created, _pick_style(rng))
        if prev is not None and prev[1] >= c_us and rng.random() < 0.15:
            u_txt, u_us = prev  # a batch job touched several records at the same instant
        else:
            span = CUTOFF_2026_06 - 1 - c_us
            u_txt, u_us = render_ts(c_us + int(span * rng.random() ** 3), _pick_style(rng))
            u_us = max(u_us, c_us)
        gen = 1 if u_us == c_us else 1 + int(rng.random() ** 2 * 12)
        return {"createdAt": c_txt, "updatedAt": u_txt, "_c": c_us, "_u": u_us, "generation": gen}

    def order(self, rng: random.Random, index: int, prev: tuple[str, int] | None) -> dict[str, Any]:
        """One order; private ``_c``/``_u``/``_s``/``_e`` keys carry canonical microseconds."""
        p = self.pools
        tm = self._record_times(rng, prev)
        acc_id, acc_name = p.accounts[rng.randrange(len(p.accounts))]
        start = EPOCH_2019 + rng.randrange((CUTOFF_2026_06 - EPOCH_2019) // DAY_US) * DAY_US
        end = start + rng.choice((1, 3, 3, 5, 5, 7, 10)) * 365 * DAY_US
        s_txt, s_us = render_ts(start, 0)
        e_txt, e_us = render_ts(end, 0)
        sow = index if rng.random() < 0.8 else max(0, index - 1)  # some orders share a SOW
        rec: dict[str, Any] = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "createdAt": tm["createdAt"],
            "updatedAt": tm["updatedAt"],
            "type": "flex/orders",
            "generation": tm["generation"],
            "billingAccountId": acc_id,
            "sowId": f"OPE-{10_000_000 + sow * 7919 % 90_000_000:010d}",
            "billingAccountName": acc_name,
            "orderStartDate": s_txt,
            "orderEndDate": e_txt,
            "customerName": p.companies[rng.randrange(min(len(p.companies), 25 + index))],
        }
        reseller = rng.choice(p.resellers) if rng.random() < 0.85 else None
        distributor = rng.choice(p.distributors) if rng.random() < 0.8 else None
        if reseller is not None:
            rec["resellerName"] = reseller
        if distributor is not None:
            rec["distributorName"] = distributor
        r = rng.random()
        partner = reseller if r < 0.6 else distributor if r < 0.85 else rng.choice(p.resellers)
        if partner is not None and rng.random() < 0.95:
            rec["partnerName"] = partner
        if rng.random() < 0.9:
            rec["isFlexPartner"] = partner is not None and rng.random() < 0.7
        rec.update(_c=tm["_c"], _u=tm["_u"], _s=s_us, _e=e_us)
        return rec

    def device(
        self, rng: random.Random, index: int, prev: tuple[str, int] | None
    ) -> dict[str, Any]:
        """One device; ``resourceId == id``; private ``_c``/``_u`` keys as for orders."""
        p = self.pools
        tm = self._record_times(rng, prev)
        model, make, dtype, pn_prefix, _w = rng.choices(MODELS, _MODEL_WEIGHTS)[0]
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        low = (index * 2_654_435_761 + self.seed) & 0xFFFFFF
        oui = OUIS[(self.seed + (index >> 24)) % len(OUIS)]  # (oui, low) is unique per index
        mac = f"{oui}:{low >> 16:02X}:{(low >> 8) & 0xFF:02X}:{low & 0xFF:02X}"
        n = (index * 2_654_435_761 + self.seed * 7919) % 36**7  # a bijection: unique serials
        serial = rng.choice(SERIAL_PREFIXES) + "".join(
            _B36[(n // 36**k) % 36] for k in range(6, -1, -1)
        )
        rec: dict[str, Any] = {
            "id": uid,
            "createdAt": tm["createdAt"],
            "updatedAt": tm["updatedAt"],
            "type": "flex/devices",
            "generation": tm["generation"],
            "macAddress": mac,
            "serialNumber": serial,
            "resourceId": uid,
            "partNumber": f"{pn_prefix}-B{rng.randrange(10, 99)}",
        }
        if rng.random() < 0.8:
            rec["name"] = f"{rng.choice(_SITES)}-{dtype.lower()}-{index:05d}"
        rec["deviceType"] = dtype
        rec["model"] = model
        rec["make"] = make
        if rng.random() < 0.93:
            rec["billingAccountName"] = p.accounts[rng.randrange(len(p.accounts))][1]
        if rng.random() < 0.85:
            rec["billingTier"] = rng.choice(p.distributors)
        k = rng.choice((0, 0, 1, 1, 2, 3))
        if k:
            rec["tags"] = [
                {"name": name, "value": rng.choice(values)} for name, values in rng.sample(_TAGS, k)
            ]
        else:
            rec["tags"] = []
        rec.update(_c=tm["_c"], _u=tm["_u"])
        return rec

    def orders(self, count: int, start: int = 0, salt: str = "") -> Iterator[dict[str, Any]]:
        """Yield ``count`` orders; ``salt`` separates later batches (mutation inserts)."""
        return self._series("orders", self.order, count, start, salt)

    def devices(self, count: int, start: int = 0, salt: str = "") -> Iterator[dict[str, Any]]:
        """Yield ``count`` devices; ``salt`` separates later batches (mutation inserts)."""
        return self._series("devices", self.device, count, start, salt)

    def _series(
        self, kind: str, make: _Maker, count: int, start: int, salt: str
    ) -> Iterator[dict[str, Any]]:
        """Yield records from ``start`` on, one seeded stream, each dated after the one before."""
        rng = random.Random(f"{kind}:{self.seed}:{salt}")
        prev: tuple[str, int] | None = None
        for i in range(start, start + count):
            rec = make(rng, i, prev)
            prev = (rec["updatedAt"], rec["_u"])
            yield rec
