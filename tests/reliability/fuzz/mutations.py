"""Hypothesis strategies that damage recorded payloads the way the network and the sources do.

Three families, each a strategy of *mutated copies* of one recorded payload, so every example stays
close enough to the real thing to get past the first check and into the parser:

* ``mutated_bytes``: byte flips, truncation, a deleted or duplicated slice, inserted junk, the text
  re-encoded (UTF-16, Latin-1, with a BOM), a huge run of one character;
* ``mutated_json``: one node of the parsed document deleted or swapped for another type (null,
  numbers out of range, lists, objects, huge or control-character strings);
* ``mutated_markup``: an HTML/XML tag deleted, an element duplicated or a tag's name changed.

Hostile strings (``HOSTILE_TEXT``) are shared with the form and profile fuzzers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import strategies as st

#: Strings that have broken parsers and queries elsewhere: operators, quotes, NUL and control
#: characters, lone surrogates' replacements, right-to-left marks, huge values, dates that are not.
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x02\x1b[31m",
    "\ufeff",
    "\u202e",
    "\ud7ff\ue000\uffff",
    "🔥" * 50,
    '"',
    "'",
    "\\",
    ":",
    "AND(",
    "OR NOT )",
    'title:"',
    "*",
    "?",
    "~2",
    "^",
    "[a TO",
    "{}",
    "%",
    "%00",
    "%ff",
    "<script>",
    "' OR 1=1 --",
    "-1",
    "0",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "2026-02-30",
    "0000-00-00",
    "99999-12-31",
    "2026-13-01",
    "02/30/2026",
    "yesterday",
    "x" * 5_000,
    "word " * 3_000,
]

HOSTILE_TEXT: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=20),
    st.builds(lambda c, n: c * n, st.sampled_from("a\x00 \"'<(:é"), st.integers(1_000, 20_000)),
)

JSON_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    HOSTILE_TEXT,
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=10)), max_size=4),
    st.dictionaries(
        st.text(max_size=8), st.one_of(st.none(), st.integers(), st.text(max_size=8)), max_size=3
    ),
)


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    size = len(original)
    kind = draw(
        st.sampled_from(["flip", "truncate", "delete", "duplicate", "insert", "encode", "huge", "empty"])
    )
    if kind == "empty" or size == 0:
        return b""
    at = draw(st.integers(0, size - 1))
    if kind == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 8))):
            spot = draw(st.integers(0, size - 1))
            data[spot] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "truncate":
        return original[:at]
    if kind == "delete":
        return original[:at] + original[at + draw(st.integers(1, 200)) :]
    if kind == "duplicate":
        end = min(size, at + draw(st.integers(1, 400)))
        return original[:end] + original[at:end] + original[end:]
    if kind == "insert":
        return original[:at] + draw(st.binary(min_size=1, max_size=40)) + original[at:]
    if kind == "encode":
        text = original.decode("utf-8", errors="replace")
        codec = draw(st.sampled_from(["utf-16", "utf-16-be", "latin-1", "utf-8-sig", "cp1252"]))
        return text.encode(codec, errors="replace")
    return (
        original[:at]
        + draw(st.sampled_from([b"A", b"\x00", b"<", b"{", b"9", b"\xff"])) * 100_000
        + original[at:]
    )


def _places(node: Any, into: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) of a parsed JSON document, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            into.append((node, key))
            _places(value, into)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            into.append((node, index))
            _places(value, into)
    return into


@st.composite
def mutated_json(draw: st.DrawFn, original: bytes) -> bytes:
    """The document with one to three nodes deleted or replaced by a value of another type."""
    try:
        document = json.loads(original)
    except ValueError:  # a recorded line that is already broken: damage its bytes instead
        return draw(mutated_bytes(original))
    if not isinstance(document, dict | list) or draw(st.integers(0, 19)) == 0:
        return json.dumps(draw(JSON_VALUES)).encode()
    for _ in range(draw(st.integers(1, 3))):
        places = _places(document, [])
        if not places:
            break
        container, key = draw(st.sampled_from(places))
        if draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(JSON_VALUES)
    return json.dumps(document).encode()


_TAG = re.compile(rb"<(/?)([A-Za-z][\w:.-]*)[^<>]*>")


@st.composite
def mutated_markup(draw: st.DrawFn, original: bytes) -> bytes:
    """One tag deleted, renamed or emptied of attributes, or one element (start to end) duplicated."""
    tags = list(_TAG.finditer(original))
    if not tags:
        return original
    tag = draw(st.sampled_from(tags))
    kind = draw(st.sampled_from(["remove", "rename", "bare", "duplicate", "unclose"]))
    start, end = tag.span()
    if kind == "remove":
        return original[:start] + original[end:]
    if kind == "rename":
        name = draw(st.sampled_from([b"div", b"x", b"table", b"time", b"a", b"h2", b"Grants"]))
        return original[:start] + b"<" + tag.group(1) + name + b">" + original[end:]
    if kind == "bare":
        return original[:start] + b"<" + tag.group(1) + tag.group(2) + b">" + original[end:]
    if kind == "unclose":
        return original[: end - 1] + original[end:]
    closing = original.find(b"</" + tag.group(2) + b">", end)
    if tag.group(1) or closing < 0:
        return original[:end] + original[start:end] + original[end:]
    stop = closing + len(tag.group(2)) + 3
    copies = draw(st.integers(1, 3))
    return original[:stop] + original[start:stop] * copies + original[stop:]


def mutated(original: bytes, *, structure: str) -> st.SearchStrategy[bytes]:
    """Byte-level damage or structural damage (``json`` or ``markup``), about half each."""
    structural = mutated_json(original) if structure == "json" else mutated_markup(original)
    return st.one_of(mutated_bytes(original), structural)
