"""The client-side OData filter validator (pure: no server)."""

from __future__ import annotations

import pytest

from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.odata import ODataFilter, combine
from tap_hpe_flex.streams import DevicesStream, OrdersStream, OrderTransformsStream

#: The fields each endpoint filters on, as its stream declares them.
FILTERABLE_FIELDS = {
    "orders": OrdersStream.filterable_fields,
    "devices": DevicesStream.filterable_fields,
    "orders/transform": OrderTransformsStream.transform_filter_fields,
}


@pytest.mark.parametrize(
    ("endpoint", "text", "canonical"),
    [
        ("orders", "customerName eq 'Some Company Inc.'", "customerName eq 'Some Company Inc.'"),
        (
            "orders",
            "billingAccountId in ('HP-APJ-999-JPN-00104','HP-APUS-787-EN-00100') "
            "and billingAccountName eq 'accountname'",
            "billingAccountId in ('HP-APJ-999-JPN-00104', 'HP-APUS-787-EN-00100') "
            "and billingAccountName eq 'accountname'",
        ),
        ("orders", "isFlexPartner   EQ   false", "isFlexPartner eq false"),
        ("orders", "customerName eq 'O''Brien & Sons'", "customerName eq 'O''Brien & Sons'"),
        (
            "devices",
            "make ne 'HPE' AND type eq 'flex/devices'",
            "make ne 'HPE' and type eq 'flex/devices'",
        ),
        ("devices", "macAddress in ('35:CA:68:8C:B0:51')", "macAddress in ('35:CA:68:8C:B0:51')"),
        ("orders/transform", "partnerName eq ''", "partnerName eq ''"),
    ],
)
def test_valid_filters_round_trip(endpoint: str, text: str, canonical: str) -> None:
    parsed = ODataFilter.parse(text, endpoint, fields=FILTERABLE_FIELDS[endpoint])
    assert parsed.render() == canonical
    assert (
        ODataFilter.parse(parsed.render(), endpoint, fields=FILTERABLE_FIELDS[endpoint]) == parsed
    )


def test_quote_escaping_is_decoded() -> None:
    parsed = ODataFilter.parse(
        "customerName eq 'O''Brien'", "orders", fields=FILTERABLE_FIELDS["orders"]
    )
    assert parsed.terms[0].values == ("O'Brien",)


@pytest.mark.parametrize(
    ("endpoint", "text", "fragment"),
    [
        ("orders", "", "empty"),
        ("orders", "updatedAt ge '2024-01-01'", "'updatedAt' is not filterable"),
        ("orders", "customername eq 'x'", "did you mean 'customerName'"),
        ("orders", "sowId gt 'x'", "unsupported operator 'gt'"),
        ("orders", "sowId eq 'x' or sowId eq 'y'", "only 'and' may join"),
        ("orders", "(sowId eq 'x')", "parentheses"),
        ("orders", "not sowId eq 'x'", "expected a field name"),
        ("orders", "sowId eq 'x", "unterminated string"),
        ("orders", "sowId eq 42", "sowId is a string"),
        ("orders", "isFlexPartner eq 1", "isFlexPartner is a boolean"),
        ("orders", "sowId eq", "the filter ended"),
        ("orders", "sowId in 'x'", "expected '(' after in"),
        ("orders", "sowId in ('x' 'y')", "expected ',' or ')'"),
        ("orders", "sowId eq 'x' sowId eq 'y'", "expected 'and'"),
        ("orders", "sowId eq 'x' and", "the filter ended"),
        ("orders", 'sowId eq "x"', "unexpected character"),
        ("devices", "deviceType eq 'AP'", "'deviceType' is not filterable"),
        ("devices", "isFlexPartner eq true", "not filterable"),
        ("orders/transform", "id eq 'x'", "'id' is not filterable"),
    ],
)
def test_invalid_filters_say_what_and_what_is_allowed(
    endpoint: str, text: str, fragment: str
) -> None:
    with pytest.raises(FlexConfigError) as info:
        ODataFilter.parse(text, endpoint, fields=FILTERABLE_FIELDS[endpoint], setting="my_filter")
    message = str(info.value)
    assert fragment in message
    assert message.startswith("Invalid my_filter")
    assert "fields: " + ", ".join(FILTERABLE_FIELDS[endpoint]) in message
    assert "\n" not in message


def test_unsupported_fields_for_the_transform_endpoint() -> None:
    orders, transform = FILTERABLE_FIELDS["orders"], FILTERABLE_FIELDS["orders/transform"]
    parsed = ODataFilter.parse(
        "isFlexPartner eq true and sowId eq 'a' and id eq 'b'", "orders", fields=orders
    )
    assert parsed.unsupported_fields(transform) == ["isFlexPartner", "id"]
    simple = ODataFilter.parse("sowId eq 'a'", "orders", fields=orders)
    assert simple.unsupported_fields(transform) == []


def test_combine_skips_empty_parts() -> None:
    assert combine(None, "a eq 'b'") == "a eq 'b'"
    assert combine("x eq 'y'", "a eq 'b'") == "x eq 'y' and a eq 'b'"
    assert combine(None, "") is None
