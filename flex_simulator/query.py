"""Per-endpoint field rules and compilation of filter/sort/select/group-by into parameterised SQL.

Decisions where HPE's material is silent (documented here so tests and the tap can rely on them):

* **Sortable fields**: the endpoint's filterable fields, plus ``orderStartDate``/``orderEndDate``
  for orders (the documented default sort is ``orderEndDate``). ``updatedAt`` only when the server's
  ``updated_sort`` switch is on. ``createdAt``, ``generation``, ``deviceType`` and ``tags`` are not
  sortable: the simulator stays strict where the docs promise nothing, so the tap cannot come to
  depend on it. Direction defaults to ``asc`` (HPE's example ``resourceId,model asc``). NULLs sort
  first ascending, last descending (SQLite's rule). ``id`` is appended as a tiebreak, so a
  listing's order is total unless the server plays unstable ties (see ``ties.py``).
* **Filter semantics**: ``ne`` matches records that lack the field (OData: null ne 'x' is true).
  ``updatedAt`` accepts eq/ne/gt/ge/lt/le/in with quoted RFC 3339 literals, only when the server's
  ``updated_filter`` switch is on; comparison is by instant, not by string.
* **Unhelpful modes** (off by default): ``updated_filter="ignore"`` checks ``updatedAt`` clauses and
  drops them; ``updated_sort="ignore"`` answers a sort naming ``updatedAt`` in the default order;
  ``single_key`` refuses a sort of several fields or on ``id`` (every sort with a tiebreak).
* **select**: exactly the listed schema fields are returned, nothing is added (not even ``id``):
  a client that needs its key must ask for it. Fields a record lacks stay absent. Names that are
  not fields of the endpoint are ignored, not refused: HPE's own devices example selects
  ``orderEndDate`` (an order field) and the spec says "All fields are supported", so a server
  that refused it would reject HPE's documented request. A select of unknown names only returns
  empty objects (the ``total`` is unchanged).
* Blank ``filter``/``sort``/``select`` strings count as absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flex_simulator.odata import (
    COMPARISON_OPS,
    Condition,
    Literal,
    QueryError,
    parse_filter,
    parse_rfc3339,
)
from flex_simulator.ties import shuffled_tiebreak

ORDER_FIELDS = [
    "id",
    "createdAt",
    "updatedAt",
    "type",
    "generation",
    "billingAccountId",
    "sowId",
    "billingAccountName",
    "orderStartDate",
    "orderEndDate",
    "customerName",
    "resellerName",
    "distributorName",
    "partnerName",
    "isFlexPartner",
]
DEVICE_FIELDS = [
    "id",
    "createdAt",
    "updatedAt",
    "type",
    "generation",
    "macAddress",
    "serialNumber",
    "resourceId",
    "partNumber",
    "name",
    "deviceType",
    "model",
    "make",
    "billingAccountName",
    "billingTier",
    "tags",
]
# The text columns of the two column tables, in store.SCHEMA's order (query_mutations.row_of
# writes rows in it). All are filterable, except devices' deviceType.
ORDER_TEXT_COLUMNS = (
    "billingAccountId",
    "sowId",
    "billingAccountName",
    "customerName",
    "resellerName",
    "partnerName",
    "distributorName",
)
DEVICE_TEXT_COLUMNS = (
    "macAddress",
    "serialNumber",
    "resourceId",
    "partNumber",
    "name",
    "type",
    "model",
    "make",
    "billingAccountName",
    "billingTier",
    "deviceType",
)
_ORDER_FILTER = ["id", *ORDER_TEXT_COLUMNS, "isFlexPartner"]
_DEVICE_FILTER = ["id", *(c for c in DEVICE_TEXT_COLUMNS if c != "deviceType")]
# JSON field -> SQL column, where they differ; every other filterable field is its own column.
COLUMN = {
    "createdAt": "created_us",
    "updatedAt": "updated_us",
    "orderStartDate": "start_us",
    "orderEndDate": "end_us",
}
GROUP_BY = ("sowId", "customerName", "billingAccountName", "billingAccountId", "partnerName")


@dataclass(frozen=True)
class Endpoint:
    """The query rules of one endpoint."""

    name: str  # as shown in messages: "orders", "orders/transform", "devices"
    table: str
    filterable: tuple[str, ...]
    sortable: tuple[str, ...]
    selectable: tuple[str, ...]
    default_sort: str


ORDERS = Endpoint(
    "orders",
    "orders",
    tuple(_ORDER_FILTER),
    (*_ORDER_FILTER, "orderStartDate", "orderEndDate"),
    tuple(ORDER_FIELDS),
    "orderEndDate",
)
TRANSFORM = Endpoint(
    "orders/transform",
    "orders",
    ORDER_TEXT_COLUMNS,
    GROUP_BY,
    GROUP_BY,
    "",
)
DEVICES = Endpoint(
    "devices",
    "devices",
    tuple(_DEVICE_FILTER),
    tuple(_DEVICE_FILTER),
    tuple(DEVICE_FIELDS),
    "resourceId",
)
BOOLEAN_FIELDS = frozenset({"isFlexPartner"})


def column(field: str) -> str:
    """Return the SQL column (quoted identifier) holding a field's comparable value."""
    return COLUMN.get(field, f'"{field}"')


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _check_type(cond: Condition, lit: Literal) -> Any:
    if cond.field == "updatedAt":
        if lit.kind != "string":
            raise QueryError(
                "filter",
                f"Literal {lit.text} at position {lit.pos} does not match updatedAt: expected a "
                "quoted RFC 3339 date-time such as '2024-02-18T19:53:51.480Z'",
            )
        try:
            return parse_rfc3339(str(lit.value))
        except ValueError:
            raise QueryError(
                "filter",
                f"Literal {lit.text} at position {lit.pos} is not an RFC 3339 date-time",
            ) from None
    expected = "boolean" if cond.field in BOOLEAN_FIELDS else "string"
    if lit.kind != expected:
        raise QueryError(
            "filter",
            f"Literal {lit.text} at position {lit.pos} is a {lit.kind} but field "
            f"'{cond.field}' is a {expected}",
        )
    return int(lit.value) if expected == "boolean" else lit.value


def compile_filter(
    text: str | None, endpoint: Endpoint, *, updated_filter: bool | str
) -> tuple[str, list[Any]]:
    """Compile a filter to an SQL boolean expression (``"1"`` when absent) and its parameters."""
    if _blank(text):
        return "1", []
    assert text is not None
    parts: list[str] = []
    params: list[Any] = []
    for cond in parse_filter(text):
        if cond.field == "updatedAt":
            if not updated_filter:
                raise QueryError(
                    "filter",
                    f"Field 'updatedAt' at position {cond.field_pos} is not filterable on "
                    f"{endpoint.name}; filterable fields: {', '.join(endpoint.filterable)}",
                )
        elif cond.field not in endpoint.filterable:
            raise QueryError(
                "filter",
                f"Unknown field '{cond.field}' at position {cond.field_pos}; filterable fields "
                f"for {endpoint.name}: {', '.join(endpoint.filterable)}",
            )
        elif cond.op not in ("eq", "ne", "in"):
            raise QueryError(
                "filter",
                f"Operator '{cond.op}' after field '{cond.field}' (position {cond.field_pos}) is "
                "not supported; use eq, ne or in",
            )
        values = [_check_type(cond, lit) for lit in cond.values]
        if cond.field == "updatedAt" and updated_filter == "ignore":
            continue  # accepted, checked, not applied
        col = column(cond.field)
        if cond.op == "in":
            parts.append(f"{col} IN ({', '.join('?' * len(values))})")
        else:
            sql_op = {"eq": "=", "ne": "IS NOT", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
            assert cond.op in COMPARISON_OPS
            parts.append(f"{col} {sql_op[cond.op]} ?")
        params.extend(values)
    return " AND ".join(parts) or "1", params


def compile_sort(
    text: str | None,
    endpoint: Endpoint,
    *,
    updated_sort: bool | str,
    default: str | None = None,
    single_key: bool = False,
    tie_salt: int | None = None,
) -> tuple[list[tuple[str, bool]], str]:
    """Parse a sort into ``[(field, descending)]`` and an ORDER BY clause.

    The clause ends in ``id`` (a total order) unless ``tie_salt`` is given: then rows tied on
    every key are ordered by a hash salted per request, unless the sort names ``id`` itself.
    """
    explicit = not _blank(text)
    if not explicit:
        text = default if default is not None else endpoint.default_sort
    assert text is not None
    terms = text.split(",")
    keys: list[tuple[str, bool]] = []
    for pos_part in terms:
        words = pos_part.split()
        if not words or len(words) > 2:
            raise QueryError(
                "sort", f"Invalid sort term '{pos_part.strip()}'; expected 'field [asc|desc]'"
            )
        field = words[0]
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise QueryError(
                "sort", f"Invalid sort direction '{words[1]}' for '{field}'; use asc or desc"
            )
        if field == "updatedAt" and not updated_sort:
            raise QueryError("sort", f"Field 'updatedAt' is not sortable on {endpoint.name}")
        if field != "updatedAt" and field not in endpoint.sortable:
            raise QueryError(
                "sort",
                f"Field '{field}' is not sortable on {endpoint.name}; sortable fields: "
                f"{', '.join(endpoint.sortable)}",
            )
        if field not in (k for k, _ in keys):
            keys.append((field, direction == "desc"))
    names = [k for k, _ in keys]
    if single_key and explicit and (len(terms) > 1 or "id" in names):
        raise QueryError(
            "sort",
            f"Sort '{text.strip()}' is not supported on {endpoint.name}: sort by one field, "
            "other than 'id'",
        )
    if updated_sort == "ignore" and "updatedAt" in names:  # accepted, answered in default order
        return compile_sort(None, endpoint, updated_sort=False, tie_salt=tie_salt)
    order = [f"{column(f)} {'DESC' if d else 'ASC'}" for f, d in keys]
    if "id" not in names and endpoint is not TRANSFORM:
        order.append('"id" ASC' if tie_salt is None else shuffled_tiebreak(tie_salt))
    return keys, ", ".join(order)


def compile_select(text: str | None, endpoint: Endpoint) -> tuple[str, ...] | None:
    """Return the fields to keep (in request order, without duplicates), or None for all.

    Unknown names are dropped silently (see the module docstring for why).
    """
    if _blank(text):
        return None
    assert text is not None
    fields: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if name in endpoint.selectable and name not in fields:
            fields.append(name)
    return tuple(fields)


def compile_transform(group_by: str | None, sort: str | None) -> tuple[str, bool]:
    """Validate group-by and sort for the transform; return (group field, descending)."""
    if _blank(group_by):
        raise QueryError("group-by", f"group-by is required; one of: {', '.join(GROUP_BY)}")
    assert group_by is not None
    field = group_by.strip()
    if field not in GROUP_BY:
        raise QueryError(
            "group-by", f"Unsupported group-by field '{field}'; one of: {', '.join(GROUP_BY)}"
        )
    keys, _ = compile_sort(sort, TRANSFORM, updated_sort=False, default=field)
    if len(keys) != 1 or keys[0][0] != field:
        raise QueryError(
            "sort", f"Sort must be the group-by field '{field}' (asc or desc), got '{sort}'"
        )
    return field, keys[0][1]
