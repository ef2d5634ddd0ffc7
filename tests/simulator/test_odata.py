"""The filter grammar: tokens, conditions, literals and the error messages clients get back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flex_simulator.odata import QueryError, parse_filter, parse_rfc3339, tokenize
from flex_simulator.query import DEVICES, ORDERS, TRANSFORM, compile_filter
from flex_simulator.store import FlexStore
from flex_simulator.testing import list_page


def test_eq_ne_in_and_conjunction() -> None:
    conds = parse_filter("make eq 'HPE' and name NE 'x' AND macAddress in ('A', 'B')")
    assert [(c.field, c.op, [v.value for v in c.values]) for c in conds] == [
        ("make", "eq", ["HPE"]),
        ("name", "ne", ["x"]),
        ("macAddress", "in", ["A", "B"]),
    ]
    assert conds[2].field_pos == 34


def test_literal_types() -> None:
    conds = parse_filter("a eq -100 and b eq 0 and c eq true and d eq FALSE and e eq 'str'")
    assert [(v.kind, v.value) for c in conds for v in c.values] == [
        ("integer", -100),
        ("integer", 0),
        ("boolean", True),
        ("boolean", False),
        ("string", "str"),
    ]


def test_doubled_quote_is_an_escaped_quote() -> None:
    (cond,) = parse_filter("customerName eq 'O''Brien ''n'' Sons'")
    assert cond.values[0].value == "O'Brien 'n' Sons"


def test_string_literal_contents_are_percent_decoded() -> None:
    (cond,) = parse_filter("customerName in ('A%26B', 'x%2Cy', '100%', '%27q%27', 'caf%C3%A9')")
    assert [v.value for v in cond.values] == ["A&B", "x,y", "100%", "'q'", "café"]


def test_reversed_in_puts_the_literal_on_the_left() -> None:
    for text in ("'HPE' in (make)", "'HPE' in make"):
        (cond,) = parse_filter(text)
        assert (cond.field, cond.op, cond.values[0].value) == ("make", "in", "HPE")


def test_rfc3339_any_offset_and_precision() -> None:
    base = parse_rfc3339("2024-02-18T19:53:51Z")
    assert parse_rfc3339("2024-02-18T19:53:51.480Z") == base + 480_000
    assert parse_rfc3339("2024-02-18T21:53:51.000000001+02:00") == base
    assert parse_rfc3339("2024-02-18T18:53:51-01:00") == base
    with pytest.raises(ValueError):
        parse_rfc3339("2024-02-30T00:00:00Z")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("make eq 'HPE' or make eq 'Aruba'", "'or' is not supported"),
        ("not make eq 'HPE'", "'not' is not supported"),
        ("(make eq 'HPE')", "Parenthesised grouping at position 0"),
        ("make eq 'HPE", "Unterminated string literal starting at position 8"),
        ("make eq 'HPE' extra", "Unexpected 'extra' at position 14"),
        ("make eq 'HPE' and", "Unexpected end of filter at position 17"),
        ("make in ()", "Empty list after 'in' at position 8"),
        ("make in ('a',)", "Unexpected ')' at position 13"),
        ("make in 'a'", "Unexpected ''a'' at position 8; expected '(' after 'in'"),
        ("make eq", "Unexpected end of filter at position 7"),
        ("make like 'x'", "Unexpected 'like' at position 5; expected an operator"),
        ("make eq null", "Literal 'null' at position 8"),
        ("make eq 'x' & b eq 'y'", "Unexpected character '&' at position 12"),
        (
            "updatedAt gt 2024-01-01T00:00:00Z",
            "Invalid literal '2024-01-01T00:00:00Z' at position 13",
        ),
        ("'HPE' eq make", "Literal 'HPE' at position 0 must be on the right of 'eq'"),
        ("", "Empty filter expression"),
    ],
)
def test_syntax_errors_name_the_offending_part(text: str, needle: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_filter(text)
    assert err.value.subject == "filter"
    assert needle in err.value.description


def test_tokens_carry_positions() -> None:
    kinds = [(t.kind, t.pos) for t in tokenize("a in ('x',-1)")]
    assert kinds == [
        ("ident", 0),
        ("ident", 2),
        ("lparen", 5),
        ("string", 6),
        ("comma", 9),
        ("integer", 10),
        ("rparen", 12),
        ("eof", 13),
    ]


@pytest.mark.parametrize(
    ("endpoint", "text", "needle"),
    [
        (DEVICES, "colour eq 'red'", "'colour' at position 0; filterable fields for devices: id,"),
        (DEVICES, "deviceType eq 'AP'", "Unknown field 'deviceType' at position 0"),
        (ORDERS, "make eq 'HPE'", "'make' at position 0; filterable fields for orders"),
        (
            TRANSFORM,
            "sowId eq 'a' and id eq 'x'",
            "'id' at position 17; filterable fields for orders/transform",
        ),
        (TRANSFORM, "isFlexPartner eq true", "Unknown field 'isFlexPartner'"),
        (
            ORDERS,
            "isFlexPartner eq 'yes'",
            "'yes' at position 17 is a string but field 'isFlexPartner' is a boolean",
        ),
        (
            ORDERS,
            "customerName eq true",
            "true at position 16 is a boolean but field 'customerName' is a string",
        ),
        (
            DEVICES,
            "name eq 100",
            "Literal 100 at position 8 is a integer but field 'name' is a string",
        ),
        (DEVICES, "name gt 'a'", "Operator 'gt' after field 'name' (position 0) is not supported"),
        (
            DEVICES,
            "make eq 'HPE' and updatedAt gt '2024-01-01T00:00Z'",
            "'updatedAt' at position 18 is not filterable on devices",
        ),
        (ORDERS, "createdAt gt '2024-01-01T00:00:00Z'", "Unknown field 'createdAt'"),
    ],
)
def test_field_errors_name_the_offending_part(endpoint, text: str, needle: str) -> None:
    with pytest.raises(QueryError) as err:
        compile_filter(text, endpoint, updated_filter=False)
    assert err.value.subject == "filter"
    assert needle in err.value.description


def test_updated_at_filter_only_with_the_switch() -> None:
    text = "updatedAt ge '2024-02-18T19:53:51.480+01:00'"
    sql, params = compile_filter(text, DEVICES, updated_filter=True)
    assert sql == "updated_us >= ?"
    assert params == [parse_rfc3339("2024-02-18T18:53:51.480Z")]
    with pytest.raises(QueryError, match="not an RFC 3339"):
        compile_filter("updatedAt gt 'yesterday'", DEVICES, updated_filter=True)
    with pytest.raises(QueryError, match="expected a quoted RFC 3339"):
        compile_filter("updatedAt gt 5", DEVICES, updated_filter=True)


def test_compiled_sql_is_parameterised() -> None:
    sql, params = compile_filter("name eq 'x'' OR 1=1 --'", DEVICES, updated_filter=False)
    assert sql == '"name" = ?'
    assert params == ["x' OR 1=1 --"]


# ---- the grammar against data ---------------------------------------------------------------


@pytest.fixture(scope="module")
def store() -> Iterator[FlexStore]:
    with FlexStore() as s:
        s.generate("w", orders=80, devices=300, seed=5)
        yield s


def _devices(store: FlexStore, flt: str) -> list[dict]:
    return list_page(
        store, "devices", "w", filter=flt, updated_filter=True, updated_sort=True
    ).items


def _all_devices(store: FlexStore) -> list[dict]:
    out: list[dict] = []
    while page := list_page(store, "devices", "w", offset=len(out)).items:
        out.extend(page)
    return out


def test_filters_match_python_evaluation(store: FlexStore) -> None:
    every = _all_devices(store)
    assert len(every) == 300
    model = every[0]["model"]
    hpe_model = [d["id"] for d in every if d["make"] == "HPE" and d["model"] == model]
    got = list_page(store, "devices", "w", filter=f"make eq 'HPE' and model eq '{model}'")
    assert got.total == len(hpe_model)
    assert [d["id"] for d in got.items] == hpe_model[:100]
    not_hpe = [d for d in every if d["make"] != "HPE"]
    assert list_page(store, "devices", "w", filter="make ne 'HPE'", limit=0).total == len(not_hpe)
    unnamed = [d for d in every if "name" not in d]
    assert unnamed, "the generator leaves some names out"
    name = next(d["name"] for d in every if "name" in d)
    named_ne = [d["id"] for d in every if d.get("name") != name]  # absent names match ne
    assert [d["id"] for d in _devices(store, f"name ne '{name}'")] == named_ne[:100]
    macs = [every[3]["macAddress"], every[7]["macAddress"]]
    got_in = _devices(store, f"macAddress in ('{macs[0]}', '{macs[1]}', 'nope')")
    assert sorted(d["macAddress"] for d in got_in) == sorted(macs)
    assert [d["id"] for d in _devices(store, f"'{every[5]['id']}' in (resourceId)")] == [
        every[5]["id"]
    ]


def test_updated_at_filter_compares_instants_not_strings(store: FlexStore) -> None:
    every = _all_devices(store)
    cut = sorted(every, key=lambda d: parse_rfc3339(d["updatedAt"]))[150]["updatedAt"]
    cut_us = parse_rfc3339(cut)
    expected = {d["id"] for d in every if parse_rfc3339(d["updatedAt"]) > cut_us}
    # the same instant written with another offset must give the same answer
    shifted = list_page(
        store, "devices", "w", filter=f"updatedAt gt '{cut}'", limit=0, updated_filter=True
    ).total
    assert shifted == len(expected)
    assert len(expected) < 150


def test_percent_encoded_literal_matches_order_field(store: FlexStore) -> None:
    page = list_page(
        store,
        "orders",
        "w",
        filter="customerName eq 'Some%20Company%20Inc.'",
        select="customerName",
    )
    assert page.items and all(o == {"customerName": "Some Company Inc."} for o in page.items)
    flex = list_page(store, "orders", "w", filter="isFlexPartner eq true")
    assert flex.total > 0 and all(o["isFlexPartner"] is True for o in flex.items)
