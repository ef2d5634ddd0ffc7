"""What a page request carries: the partition's plan, and the tokens that name a page or a check.

Plain data, kept apart so that ``planning.py`` (plans per partition) and ``snapshot.py`` (the
per-pass snapshot check) can both build requests from them without importing each other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tap_hpe_flex.incremental import Strategy


@dataclass
class Plan:
    """How the current partition narrows to changed records (see ``incremental.py``)."""

    strategy: Strategy
    probing: bool
    bookmark: dt.datetime | None
    stop: bool = False
    first_response_seen: bool = False
    #: Whether a successful probe settles the run's strategy at once (concurrent snapshot-check
    #: probes settle it themselves, in probe order, once all have answered).
    settles: bool = True


@dataclass(frozen=True)
class PageToken:
    """A page token that carries its plan, so pages of different partitions build correctly."""

    offset: int
    plan: Plan


@dataclass(frozen=True)
class Snapshot:
    """How a pass is vouched for instead of overlapping its pages (see ``drift.py``).

    ``before``: the instant the check counts from; ``by_sort``: the API sorts but does not filter
    on ``updatedAt``, so the check asks for the newest record instead of a count.
    """

    before: dt.datetime
    by_sort: bool = False


@dataclass(frozen=True)
class CheckToken:
    """A pass's snapshot check (or a probe for one) in place of a page offset."""

    plan: Plan
    snapshot: Snapshot
