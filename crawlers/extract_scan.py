"""The records of a Grants.gov XML extract, found in its bytes before (and mostly instead of) parsing it.

An extract is one root element holding ~85,000 flat record elements (``OpportunitySynopsisDetail_1_0``
and ``OpportunityForecastDetail_1_0``, children with text only: ``OpportunityDetail-V1.0.xsd``).
A nightly re-ingest only needs to know which records changed, and a first load only wants the four
departments' half of them, so parsing all of it as XML is wasted work. ``Scanner`` splits the
stream at the record tags (``bytes.find``, a few microseconds a record) and the caller reads the
handful of fields its decisions need straight from the bytes (``field_text``); only the records it
keeps are parsed, each on its own (``parse_record``, lxml).

What is not plain is never guessed at: a DTD, a declared encoding other than UTF-8, markup other
than comments between records, comments, CDATA or processing instructions inside a record, or a
record inside a record raise ``NotPlain``, and the caller reads the rest of the file with lxml
(``records_done`` says how many records it already had). A file that ends inside a record or before
its root is closed raises ``ExtractSyntaxError`` with the line, like the XML parser would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from lxml import etree

#: Children that may repeat (their values become lists).
REPEATED = frozenset(
    {"FundingInstrumentType", "CategoryOfFundingActivity", "CFDANumbers", "EligibleApplicants"}
)
BLOCK_SIZE = 1 << 22
_XML_SPACE = b" \t\r\n"
_RECORD_START = re.compile(rb"<(OpportunitySynopsisDetail_1_0|OpportunityForecastDetail_1_0)[\s/>]")
_NAME = re.compile(rb"<([^\s/>]+)")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
#: C0 controls XML forbids in text (all but tab, LF, CR): a field holding one is left to lxml,
#: which rejects it exactly as a full parse would.
_C0 = bytes(byte for byte in range(0x20) if byte not in (0x09, 0x0A, 0x0D))
_ENTITY = re.compile(r"&(?:#([0-9]+);|#x([0-9a-fA-F]+);|(lt|gt|amp|quot|apos);)")
_NAMED = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))
_NAMED_CHARS = {entity[1:-1]: char for entity, char in _NAMED}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True)


class NotPlain(Exception):
    """The file uses XML the byte scanner does not read; parse it (from record ``records_done + 1``)."""

    def __init__(self, reason: str, records_done: int) -> None:
        super().__init__(reason)
        self.records_done = records_done


class ExtractSyntaxError(Exception):
    """The extract is not well-formed where the scanner looked (truncated, most often)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Irregular(Exception):
    """A record's bytes are not the plain form ``field_text`` reads."""


class RawRecord(NamedTuple):
    kind: str
    #: The element from its start tag through its end tag, as published.
    data: bytes
    #: Where it starts in the scanner's buffer (valid until the scanner moves on).
    offset: int


@dataclass
class Prolog:
    """What comes before the first record: the root element's start tag gives the fragments'
    namespace context when a record has to be parsed on its own."""

    root_start: bytes = b""
    root_name: bytes = b""


class _Buffer:
    """The stream read in blocks into one growing buffer, with the line count of what was dropped."""

    def __init__(self, stream: IO[bytes], block_size: int) -> None:
        self.stream = stream
        self.block_size = block_size
        self.data = bytearray()
        self.eof = False
        self.lines_dropped = 0

    def more(self) -> bool:
        if self.eof:
            return False
        block = self.stream.read(self.block_size)
        if not block:
            self.eof = True
            return False
        self.data += block
        return True

    def drop(self, upto: int) -> None:
        self.lines_dropped += self.data.count(b"\n", 0, upto)
        del self.data[:upto]

    def line_at(self, offset: int) -> int:
        return self.lines_dropped + self.data.count(b"\n", 0, offset) + 1

    def find(self, needle: bytes, start: int) -> int:
        """``needle``'s offset at or after ``start``, reading on as needed; -1 at the end of the file."""
        while True:
            found = self.data.find(needle, start)
            if found >= 0:
                return found
            start = max(start, len(self.data) - len(needle))
            if not self.more():
                return -1

    def ensure(self, size: int) -> None:
        """Read on until ``size`` bytes are buffered or the file ends."""
        while len(self.data) < size:
            if not self.more():
                return

    def read_all(self) -> None:
        """Read the rest of the file into the buffer."""
        while self.more():
            continue


def _skip_markup(buffer: _Buffer, at: int) -> int | None:
    """The offset after a comment or processing instruction starting at ``at`` (None: neither)."""
    data = buffer.data
    buffer.ensure(at + 4)
    if data.startswith(b"<!--", at):
        end = buffer.find(b"-->", at + 4)
        return None if end < 0 else end + 3
    if data.startswith(b"<?", at):
        end = buffer.find(b"?>", at + 2)
        return None if end < 0 else end + 2
    return None


def _read_prolog(buffer: _Buffer) -> tuple[Prolog, int]:
    """The root start tag and the offset after it; ``NotPlain`` for anything but UTF-8 without a DTD."""
    buffer.ensure(5)
    data = buffer.data
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00", b"<\x00")):
        raise NotPlain("the extract is not UTF-8", 0)
    pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if data.startswith(b"<?xml", pos):
        end = buffer.find(b"?>", pos)
        if end < 0:
            raise ExtractSyntaxError("the XML declaration is not closed", 1)
        declared = _ENCODING.search(bytes(data[pos:end]))
        if declared and declared[1].lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
            raise NotPlain(f"the extract declares encoding {declared[1].decode()}", 0)
        pos = end + 2
    while True:
        lt = buffer.find(b"<", pos)
        if lt < 0:
            raise ExtractSyntaxError("Document is empty", buffer.line_at(len(data)))
        if data[pos:lt].strip(_XML_SPACE):
            raise ExtractSyntaxError("Start tag expected, '<' not found", buffer.line_at(pos))
        skipped = _skip_markup(buffer, lt)
        if skipped is not None:
            pos = skipped
            continue
        if data.startswith(b"<!", lt):
            raise NotPlain("the extract has a document type declaration", 0)
        end = buffer.find(b">", lt)
        if end < 0:
            raise ExtractSyntaxError("the root element's start tag is not closed", buffer.line_at(lt))
        root_start = bytes(data[lt : end + 1])
        name = _NAME.match(root_start)
        if name is None:
            raise ExtractSyntaxError("StartTag: invalid element name", buffer.line_at(lt))
        if b":" in name[1] or root_start.count(b'"') % 2 or root_start.count(b"'") % 2:
            # A prefixed root (its records are prefixed too), or a '>' inside an attribute value.
            raise NotPlain("the root element uses a namespace prefix", 0)
        return Prolog(root_start=root_start, root_name=name[1]), end + 1


class Scanner:
    """Reads one extract stream: ``records()`` once, ``prolog`` and ``line_of`` while it runs."""

    def __init__(self, stream: IO[bytes], block_size: int = BLOCK_SIZE) -> None:
        self.buffer = _Buffer(stream, block_size)
        self.prolog = Prolog()

    def line_of(self, record: RawRecord) -> int:
        """The line the record starts on (for the record the scanner last gave)."""
        return self.buffer.line_at(record.offset)

    def records(self) -> Iterator[RawRecord]:
        """Every record element of the extract, in file order (see the module docstring for what
        is not read here)."""
        buffer = self.buffer
        self.prolog, pos = _read_prolog(buffer)
        yield from _records(buffer, self.prolog, pos)


def _records(buffer: _Buffer, prolog: Prolog, pos: int) -> Iterator[RawRecord]:
    block_size = buffer.block_size
    if prolog.root_start.endswith(b"/>"):
        return
    root_end = b"</" + prolog.root_name
    data = buffer.data
    markup = _NextMarkup(buffer)
    count = 0
    while True:
        lt = data.find(b"<", pos)
        if lt < 0 or lt + 32 > len(data):
            buffer.ensure(len(data) + 1)
            lt = buffer.find(b"<", pos)
            if lt < 0:
                raise ExtractSyntaxError(
                    f"the file ends after {count} records without closing "
                    f"<{prolog.root_name.decode()}> (truncated?)",
                    buffer.line_at(len(data)),
                )
            buffer.ensure(lt + 32)
        if pos < lt and data[pos:lt].strip(_XML_SPACE):
            raise NotPlain("text between records", count)
        start = _RECORD_START.match(data, lt)
        if start is None:
            skipped = _skip_markup(buffer, lt)
            if skipped is not None:
                pos = skipped
                continue
            if data.startswith(root_end, lt):
                _check_tail(buffer, lt + len(root_end))
                return
            raise NotPlain("markup other than records in the root element", count)
        tag_end = data.find(b">", lt)
        if tag_end < 0:
            tag_end = buffer.find(b">", lt)
            if tag_end < 0:
                raise ExtractSyntaxError(
                    f"the file ends inside record {count + 1} (truncated?)", buffer.line_at(len(data))
                )
        if data[tag_end - 1] == 0x2F:  # "/>": an empty record
            end = tag_end + 1
        else:
            # Both record names end in "Detail_1_0" and no child's does: its next occurrence
            # is this record's end tag, unless a record starts inside this one.
            close = data.find(b"Detail_1_0>", tag_end)
            if close < 0:
                close = buffer.find(b"Detail_1_0>", tag_end)
                if close < 0:
                    raise ExtractSyntaxError(
                        f"the file ends inside record {count + 1} (truncated?)", buffer.line_at(len(data))
                    )
            end = close + 11
            if data[end - 32 : end - 30] != b"</" or data[end - 30 : end - 1] != data[lt + 1 : lt + 30]:
                raise NotPlain("a record inside a record (or one without its end tag)", count)
        if markup.within(lt, end):
            raise NotPlain("a comment, CDATA section or processing instruction inside a record", count)
        count += 1
        kind = "synopsis" if data[lt + 12] == 0x53 else "forecast"  # <OpportunityS…
        yield RawRecord(kind, bytes(data[lt:end]), lt)
        pos = end
        if pos >= block_size:
            buffer.drop(pos)
            markup.dropped(pos)
            pos = 0


class _NextMarkup:
    """Where the next ``<!`` or ``<?`` is, looked for once per stretch of the buffer rather than once
    per record (a record holding either is not plain). ``!`` and ``?`` are found with memchr; a
    two-byte search for ``<!`` would read every ``<`` of every record."""

    def __init__(self, buffer: _Buffer) -> None:
        self.buffer = buffer
        self.found = -1
        self.searched = 0

    def within(self, start: int, end: int) -> bool:
        if 0 <= self.found < start:
            self.found = -1
            self.searched = start
        if self.found < 0:
            data = self.buffer.data
            origin = max(self.searched, start)
            if origin + 1 < len(data):
                hits = [at for mark in (b"!", b"?") if (at := _after_lt(data, mark, origin)) >= 0]
                self.found = min(hits) if hits else -1
                self.searched = len(data) - 1  # one straddling the end is found from here next time
        return start <= self.found < end

    def dropped(self, upto: int) -> None:
        self.searched = max(0, self.searched - upto)
        self.found = self.found - upto if self.found >= upto else -1


def _after_lt(data: bytearray, mark: bytes, origin: int) -> int:
    """The offset of the next ``<`` + ``mark`` at or after ``origin``, or -1."""
    at = data.find(mark, origin + 1)
    while at >= 0 and data[at - 1] != 0x3C:
        at = data.find(mark, at + 1)
    return at - 1 if at >= 0 else -1


def _check_tail(buffer: _Buffer, at: int) -> None:
    """After the root's end tag only whitespace, comments and processing instructions may follow."""
    end = buffer.find(b">", at)
    data = buffer.data
    if end < 0 or data[at:end].strip(_XML_SPACE):
        raise ExtractSyntaxError("the root element's end tag is not closed", buffer.line_at(at))
    pos = end + 1
    while True:
        buffer.read_all()
        lt = data.find(b"<", pos)
        if data[pos : (len(data) if lt < 0 else lt)].strip(_XML_SPACE):
            raise ExtractSyntaxError("Extra content at the end of the document", buffer.line_at(pos))
        if lt < 0:
            return
        skipped = _skip_markup(buffer, lt)
        if skipped is None:
            raise ExtractSyntaxError("Extra content at the end of the document", buffer.line_at(lt))
        pos = skipped


def field_text(data: bytes, name: bytes) -> str | None:
    """The text of the record's first ``name`` child, as ``element.findtext`` gives it ("" when
    empty, None when absent); ``Irregular`` when the bytes are not the plain form."""
    opening = b"<" + name + b">"
    start = data.find(opening)
    if start < 0:
        if _other_form(data, name):
            raise Irregular(name.decode())
        return None
    start += len(opening)
    end = data.find(b"</" + name + b">", start)
    if end < 0 or data.find(b"<", start, end) >= 0:
        raise Irregular(name.decode())
    return _text(data[start:end])


def _other_form(data: bytes, name: bytes) -> bool:
    """Whether ``name`` is a tag in another form than ``<name>`` (empty, with attributes, prefixed)."""
    for before, after in ((b"<", b" \t\r\n/"), (b":", b" \t\r\n/>")):
        at = data.find(before + name)
        while at >= 0:
            following = at + 1 + len(name)
            if following < len(data) and data[following] in after:
                return True
            at = data.find(before + name, at + 1)
    return False


def _text(raw: bytes) -> str:
    """Element text from its raw bytes: UTF-8, line ends normalized, the five entities and
    character references decoded; ``Irregular`` for anything an XML parser would reject."""
    if len(raw.translate(None, _C0)) != len(raw) or b"]]>" in raw:
        raise Irregular("characters XML forbids")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Irregular("not UTF-8") from exc
    if not raw.isascii() and ("\ufffe" in text or "\uffff" in text):
        raise Irregular("characters XML forbids")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "&" not in text:
        return text
    if "&#" not in text:
        # Named entities only: replacing ``&amp;`` last decodes exactly one level.
        if sum(text.count(entity) for entity, _ in _NAMED) != text.count("&"):
            raise Irregular("an entity XML does not define")
        for entity, char in _NAMED:
            if entity in text:
                text = text.replace(entity, char)
        return text
    decoded, found = _ENTITY.subn(_entity, text)
    if found != text.count("&"):
        raise Irregular("an entity XML does not define")
    return decoded


def _entity(match: re.Match[str]) -> str:
    if match[3] is not None:
        return _NAMED_CHARS[match[3]]
    code = int(match[1]) if match[1] is not None else int(match[2], 16)
    if not (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    ):
        raise Irregular("a character reference to a character XML forbids")
    return chr(code)


def parse_record(record: RawRecord, prolog: Prolog) -> Any:
    """The record parsed on its own with lxml, inside its root's start tag (for namespace context);
    raises ``etree.XMLSyntaxError`` for what a full parse would reject."""
    wrapped = prolog.root_start + record.data + b"</" + prolog.root_name + b">"
    return etree.fromstring(wrapped, _PARSER)[0]
