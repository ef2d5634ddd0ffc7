"""Tokenizer and recursive-descent parser for the OData filter subset Flex documents.

Grammar (keywords are case-insensitive, field names are case-sensitive)::

    filter     := condition ( "and" condition )* EOF
    condition  := FIELD op literal
                | FIELD "in" "(" literal ( "," literal )* ")"
                | literal "in" "(" FIELD ")"        -- HPE: "in allows the property on either side"
                | literal "in" FIELD
    op         := "eq" | "ne" | "gt" | "ge" | "lt" | "le"
    literal    := STRING | INTEGER | "true" | "false"

``or``, ``not``, parenthesised grouping and ``null`` are outside the subset and are rejected with a
message naming the token and its 0-based character position. Which field accepts which operator
and literal type is decided by the caller (``query.py``), not by the grammar.

Percent-decoding rule: the HTTP layer decodes the query string once. HPE's guide asks clients to
percent-encode reserved characters *inside string literals* as well, so the *contents* of every
string literal are percent-decoded once more here (``'A%26B'`` means ``A&B``). A ``%`` not followed
by two hex digits stays literal (``'100%'`` means ``100%``). Inside quotes, ``''`` is an escaped
single quote; it is unescaped before the percent-decoding, so ``'%27'`` is also a quote.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass
from typing import Literal as TypingLiteral
from urllib.parse import unquote

COMPARISON_OPS = ("eq", "ne", "gt", "ge", "lt", "le")
_UNSUPPORTED = {
    "or": "'or' is not supported; only 'and' may join conditions",
    "not": "'not' is not supported",
}


class QueryError(ValueError):
    """A client mistake in a query parameter: the server answers 400 HpeGreenLakeBadRequestError.

    ``subject`` is the parameter ("filter", "sort", "select", "group-by"); ``description`` is a
    sentence naming the offending part, safe to echo back to the client.
    """

    def __init__(self, subject: str, description: str) -> None:
        super().__init__(description)
        self.subject = subject
        self.description = description


@dataclass(frozen=True)
class Token:
    """One lexical token; ``pos`` is its 0-based offset in the filter text."""

    kind: TypingLiteral["ident", "string", "integer", "lparen", "rparen", "comma", "eof"]
    text: str  # the raw source text (for messages)
    pos: int
    value: str | int | None = None  # decoded string contents or integer value


@dataclass(frozen=True)
class Literal:
    """A literal with its syntactic type (the grammar, not the field, decides the type)."""

    kind: TypingLiteral["string", "integer", "boolean"]
    value: str | int | bool
    text: str
    pos: int


@dataclass(frozen=True)
class Condition:
    """``field op value`` or ``field in (values)``; a filter is a conjunction of these."""

    field: str
    field_pos: int
    op: str  # one of COMPARISON_OPS or "in"
    values: tuple[Literal, ...]


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_INT = re.compile(r"-?[0-9]+")


def tokenize(text: str) -> list[Token]:
    """Split a filter into tokens; raise QueryError at the first character that fits no token."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    singles = {"(": "lparen", ")": "rparen", ",": "comma"}
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch in singles:
            tokens.append(Token(singles[ch], ch, i))  # type: ignore[arg-type]
            i += 1
        elif ch == "'":
            j, parts = i + 1, []
            while True:
                k = text.find("'", j)
                if k < 0:
                    raise QueryError(
                        "filter", f"Unterminated string literal starting at position {i}"
                    )
                parts.append(text[j:k])
                if k + 1 < n and text[k + 1] == "'":
                    parts.append("'")
                    j = k + 2
                    continue
                break
            raw = text[i : k + 1]
            try:
                value = unquote("".join(parts), errors="strict")
            except UnicodeDecodeError:
                raise QueryError(
                    "filter",
                    f"String literal {raw} at position {i} is not valid percent-encoded UTF-8",
                ) from None
            tokens.append(Token("string", raw, i, value))
            i = k + 1
        elif m := _INT.match(text, i):
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] in "_.:-"):
                bad = re.match(r"[^\s(),]+", text[i:])
                word = bad.group(0) if bad else text[i:end]
                raise QueryError(
                    "filter",
                    f"Invalid literal '{word}' at position {i}; strings must be in single quotes",
                )
            tokens.append(Token("integer", m.group(0), i, int(m.group(0))))
            i = end
        elif m := _IDENT.match(text, i):
            tokens.append(Token("ident", m.group(0), i))
            i = m.end()
        else:
            raise QueryError("filter", f"Unexpected character '{ch}' at position {i}")
    tokens.append(Token("eof", "", n))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_kw(self, tok: Token, *words: str) -> bool:
        return tok.kind == "ident" and tok.text.lower() in words

    def fail(self, tok: Token, expected: str) -> QueryError:
        if tok.kind == "eof":
            return QueryError(
                "filter", f"Unexpected end of filter at position {tok.pos}; expected {expected}"
            )
        if self.is_kw(tok, *_UNSUPPORTED):
            word = tok.text.lower()
            return QueryError("filter", f"Operator {_UNSUPPORTED[word]} (at position {tok.pos})")
        if tok.kind == "lparen":
            return QueryError(
                "filter", f"Parenthesised grouping at position {tok.pos} is not supported"
            )
        return QueryError(
            "filter", f"Unexpected '{tok.text}' at position {tok.pos}; expected {expected}"
        )

    def parse(self) -> tuple[Condition, ...]:
        if self.peek().kind == "eof":
            raise QueryError("filter", "Empty filter expression")
        conditions = [self.condition()]
        while self.peek().kind != "eof":
            tok = self.next()
            if not self.is_kw(tok, "and"):
                raise self.fail(tok, "'and' or end of filter")
            conditions.append(self.condition())
        return tuple(conditions)

    def literal(self) -> Literal:
        tok = self.next()
        if tok.kind == "string":
            assert isinstance(tok.value, str)
            return Literal("string", tok.value, tok.text, tok.pos)
        if tok.kind == "integer":
            assert isinstance(tok.value, int)
            return Literal("integer", tok.value, tok.text, tok.pos)
        if self.is_kw(tok, "true", "false"):
            return Literal("boolean", tok.text.lower() == "true", tok.text, tok.pos)
        if self.is_kw(tok, "null"):
            raise QueryError("filter", f"Literal 'null' at position {tok.pos} is not supported")
        raise self.fail(tok, "a literal ('string', integer, true or false)")

    def field(self) -> Token:
        tok = self.next()
        if tok.kind != "ident" or self.is_kw(
            tok, "and", "or", "not", "in", "true", "false", "null", *COMPARISON_OPS
        ):
            raise self.fail(tok, "a field name")
        return tok

    def condition(self) -> Condition:
        first = self.peek()
        if first.kind in ("string", "integer") or self.is_kw(first, "true", "false"):
            return self.reversed_in()
        name = self.field()
        op_tok = self.next()
        op = op_tok.text.lower() if op_tok.kind == "ident" else ""
        if op in COMPARISON_OPS:
            return Condition(name.text, name.pos, op, (self.literal(),))
        if op == "in":
            values = self.literal_list()
            return Condition(name.text, name.pos, "in", values)
        raise self.fail(op_tok, "an operator (eq, ne, in)")

    def literal_list(self) -> tuple[Literal, ...]:
        tok = self.next()
        if tok.kind != "lparen":
            raise self.fail(tok, "'(' after 'in'")
        if self.peek().kind == "rparen":
            raise QueryError("filter", f"Empty list after 'in' at position {tok.pos}")
        values = [self.literal()]
        while (tok := self.next()).kind == "comma":
            values.append(self.literal())
        if tok.kind != "rparen":
            raise self.fail(tok, "',' or ')' in the 'in' list")
        return tuple(values)

    def reversed_in(self) -> Condition:
        lit = self.literal()
        op_tok = self.next()
        if not self.is_kw(op_tok, "in"):
            raise QueryError(
                "filter",
                f"Literal {lit.text} at position {lit.pos} must be on the right of "
                f"'{op_tok.text or 'its operator'}'; only 'in' allows a literal on the left",
            )
        if self.peek().kind == "lparen":
            self.next()
            name = self.field()
            close = self.next()
            if close.kind != "rparen":
                raise self.fail(close, "')' after the field name")
        else:
            name = self.field()
        return Condition(name.text, name.pos, "in", (lit,))


def parse_filter(text: str) -> tuple[Condition, ...]:
    """Parse a filter into a conjunction of conditions (see the module docstring)."""
    return _Parser(text).parse()


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(text: str) -> int:
    """Return microseconds since the epoch; any offset, any fraction (beyond µs truncated)."""
    m = _RFC3339.fullmatch(text)
    if not m:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    datetime.date(y, mo, d)  # raises ValueError for an impossible date
    if h > 23 or mi > 59 or s > 60:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    frac = int((m.group(7) or "").ljust(6, "0")[:6])
    offset = 0
    if m.group(9):
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * 60
        offset = offset if m.group(9) == "+" else -offset
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - offset
    return secs * 1_000_000 + frac
