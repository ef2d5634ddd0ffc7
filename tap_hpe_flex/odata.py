"""Parse and check user filters against the OData subset HPE documents for Flex v1beta1.

Why check client-side: a filter the API would reject should fail at start-up with a message that
says what is wrong and what is allowed, before any token or data request is spent. The subset
(HPE's guide and OpenAPI doc): ``field eq|ne literal`` and ``field in (literal, ...)``, joined with
``and``; literals are 'single-quoted strings' (``''`` escapes a quote), integers and booleans; the
literal's type must match the field's.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

from tap_hpe_flex.errors import FlexConfigError

#: Fields whose literals must be booleans; every other documented field is a string.
BOOLEAN_FIELDS = frozenset({"isFlexPartner"})

OPERATORS = ("eq", "ne", "in")
_UNSUPPORTED_WORDS = {
    "or": "only 'and' may join comparisons",
    "not": "'not' is not supported",
    "gt": "only eq, ne and in are supported",
    "ge": "only eq, ne and in are supported",
    "lt": "only eq, ne and in are supported",
    "le": "only eq, ne and in are supported",
    "has": "only eq, ne and in are supported",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<badstring>'(?:[^']|'')*$)
  | (?P<int>[-+]?\d+(?![\w.]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

Scalar = str | int | bool


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Comparison:
    """One ``field op literal`` (or ``field in (...)``) term."""

    field: str
    op: str
    values: tuple[Scalar, ...]

    def render(self) -> str:
        """Render the term as canonical OData text (lower-case operators, single spaces)."""
        rendered = [render_literal(v) for v in self.values]
        if self.op == "in":
            return f"{self.field} in ({', '.join(rendered)})"
        return f"{self.field} {self.op} {rendered[0]}"


def render_literal(value: Scalar) -> str:
    """Render a literal: booleans bare, integers bare, strings quoted with '' escaping."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class ODataFilter:
    """A validated filter for one endpoint; ``render()`` gives the text sent as ``filter=``."""

    endpoint: str
    terms: tuple[Comparison, ...]

    @property
    def fields(self) -> frozenset[str]:
        """The fields the filter compares, e.g. to check it also suits another endpoint."""
        return frozenset(term.field for term in self.terms)

    def render(self) -> str:
        """Canonical text of the whole filter."""
        return " and ".join(term.render() for term in self.terms)

    def unsupported_fields(self, fields: t.Iterable[str]) -> list[str]:
        """Fields of this filter that are not among ``fields`` (in filter order)."""
        allowed = set(fields)
        return [f for f in dict.fromkeys(t.field for t in self.terms) if f not in allowed]

    @classmethod
    def parse(
        cls, text: str, endpoint: str, *, fields: t.Sequence[str], setting: str = "filter"
    ) -> ODataFilter:
        """Parse and validate ``text`` for ``endpoint``, whose filterable ``fields`` are given.

        Raises FlexConfigError on one line that says what is allowed.
        """
        return _Parser(text, endpoint, tuple(fields), setting).parse()


def combine(*expressions: str | None) -> str | None:
    """AND together filter texts, skipping empty ones (None when nothing is left)."""
    parts = [e for e in expressions if e]
    return " and ".join(parts) if parts else None


class _Parser:
    def __init__(self, text: str, endpoint: str, fields: tuple[str, ...], setting: str) -> None:
        self.text = text
        self.endpoint = endpoint
        self.setting = setting
        self.fields = fields
        self.tokens = self._tokenize(text)
        self.index = 0

    # --- errors -------------------------------------------------------------------------------
    def _allowed(self) -> str:
        return (
            f"allowed for {self.endpoint}: <field> eq|ne <literal>, <field> in (<literal>, ...), "
            f"joined with 'and'; fields: {', '.join(self.fields)}"
        )

    def _fail(self, problem: str, pos: int | None = None) -> FlexConfigError:
        where = f" at position {pos}" if pos is not None else ""
        return FlexConfigError(
            f"Invalid {self.setting} {self.text!r}: {problem}{where}; {self._allowed()}"
        )

    # --- lexing -------------------------------------------------------------------------------
    def _tokenize(self, text: str) -> list[_Token]:
        tokens: list[_Token] = []
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup or "other"
            if kind == "ws":
                continue
            if kind == "badstring":
                raise self._fail("unterminated string literal", match.start())
            if kind == "other":
                raise self._fail(f"unexpected character {match.group()!r}", match.start())
            tokens.append(_Token(kind, match.group(), match.start()))
        return tokens

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise self._fail(f"expected {expected} but the filter ended", len(self.text))
        self.index += 1
        return token

    # --- grammar ------------------------------------------------------------------------------
    def parse(self) -> ODataFilter:
        if not self.tokens:
            raise self._fail("the filter is empty")
        terms = [self._term()]
        while (token := self._peek()) is not None:
            word = token.text.lower() if token.kind == "word" else None
            if word != "and":
                hint = _UNSUPPORTED_WORDS.get(word or "", "expected 'and' between comparisons")
                raise self._fail(f"unexpected {token.text!r} ({hint})", token.pos)
            self.index += 1
            terms.append(self._term())
        return ODataFilter(self.endpoint, tuple(terms))

    def _term(self) -> Comparison:
        token = self._next("a field name")
        if token.kind == "punct" and token.text == "(":
            raise self._fail("parentheses for grouping are not supported", token.pos)
        keywords = {"and", *OPERATORS, "true", "false", *_UNSUPPORTED_WORDS}
        if token.kind != "word" or token.text.lower() in keywords:
            hint = _UNSUPPORTED_WORDS.get(token.text.lower())
            found = f"{token.text!r} ({hint})" if hint else repr(token.text)
            raise self._fail(f"expected a field name, found {found}", token.pos)
        field = token.text
        if field not in self.fields:
            close = [f for f in self.fields if f.lower() == field.lower()]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self._fail(f"field {field!r} is not filterable{hint}", token.pos)
        op_token = self._next("an operator (eq, ne, in)")
        op = op_token.text.lower() if op_token.kind == "word" else op_token.text
        if op not in OPERATORS:
            hint = _UNSUPPORTED_WORDS.get(op, "expected eq, ne or in")
            raise self._fail(f"unsupported operator {op_token.text!r} ({hint})", op_token.pos)
        values = self._list(field) if op == "in" else (self._literal(field),)
        return Comparison(field, op, values)

    def _list(self, field: str) -> tuple[Scalar, ...]:
        token = self._next("'(' after in")
        if token.text != "(":
            raise self._fail(f"expected '(' after in, found {token.text!r}", token.pos)
        values = [self._literal(field)]
        while True:
            token = self._next("',' or ')'")
            if token.text == ")":
                return tuple(values)
            if token.text != ",":
                raise self._fail(f"expected ',' or ')', found {token.text!r}", token.pos)
            values.append(self._literal(field))

    def _literal(self, field: str) -> Scalar:
        token = self._next("a literal")
        value: Scalar
        if token.kind == "string":
            value = token.text[1:-1].replace("''", "'")
        elif token.kind == "int":
            value = int(token.text)
        elif token.kind == "word" and token.text in {"true", "false"}:
            value = token.text == "true"
        else:
            raise self._fail(
                f"expected a literal ('text', integer, true or false), found {token.text!r}",
                token.pos,
            )
        wants_bool = field in BOOLEAN_FIELDS
        if wants_bool and not isinstance(value, bool):
            raise self._fail(f"{field} is a boolean: compare it with true or false", token.pos)
        if not wants_bool and not isinstance(value, str):
            raise self._fail(
                f"{field} is a string: quote the literal, e.g. {field} eq '{token.text}'",
                token.pos,
            )
        return value
