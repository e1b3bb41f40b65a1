"""Which format a raw message is in, and driving its parser over a (possibly batched) document.

Header first: ``cityops-format`` (``canonical``, ``ngsi-v2``, ``ngsi-ld``, ``ngsi``,
``sensorthings``, ``open311``), then ``content-type`` (``application/ld+json`` is NGSI-LD);
otherwise the shape of the (first) object decides. A header naming an unknown format is
refused (``unknown_format``) rather than guessed around: the producer said something wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pipeline.ingest.adapters import canonical, ngsi, open311, sensorthings
from pipeline.ingest.adapters.base import ParseOutput, Problem, SchemaError
from pipeline.models import RejectReason

__all__ = [
    "FORMATS",
    "FORMAT_HEADER",
    "HeaderError",
    "detect_format",
    "format_from_headers",
    "parse_document",
]

FORMAT_HEADER = "cityops-format"
FORMATS = ("canonical", "ngsi-v2", "ngsi-ld", "sensorthings", "open311")
_HEADER_FORMATS = {
    "canonical": "canonical",
    "cityops": "canonical",
    "ngsi": "ngsi",
    "ngsi-v2": "ngsi-v2",
    "ngsiv2": "ngsi-v2",
    "ngsi-ld": "ngsi-ld",
    "ngsild": "ngsi-ld",
    "sensorthings": "sensorthings",
    "sta": "sensorthings",
    "open311": "open311",
    "georeport": "open311",
    "georeport-v2": "open311",
}

HeadersLike = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None


class HeaderError(ValueError):
    """The format header names no known format."""


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def format_from_headers(headers: HeadersLike) -> str | None:
    """The format a producer declared, ``ngsi`` for NGSI of either flavour, or None."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    content_type: str | None = None
    for key, value in items:
        name = key.lower() if isinstance(key, str) else _text(key).lower()
        if name == FORMAT_HEADER:
            declared = _text(value).strip().lower()
            found = _HEADER_FORMATS.get(declared)
            if found is None:
                msg = f"{FORMAT_HEADER} header names no known format: {declared[:40]!r}"
                raise HeaderError(msg)
            return found
        if name == "content-type":
            content_type = _text(value).lower()
    if content_type is not None and "ld+json" in content_type:
        return "ngsi-ld"
    return None


def detect_format(doc: Any) -> str | None:
    """The format of a decoded document from its shape (the first element of an array)."""
    first = doc
    if isinstance(doc, dict):
        if "subscriptionId" in doc and isinstance(doc.get("data"), list):
            first = doc["data"][0] if doc["data"] else None
        elif isinstance(doc.get("value"), list) and "result" not in doc:
            first = doc["value"][0] if doc["value"] else None
    elif isinstance(doc, list):
        first = doc[0] if doc else None
    if not isinstance(first, dict):
        return None
    if canonical.looks_like(first):
        return "canonical"
    if sensorthings.looks_like(first):
        return "sensorthings"
    if open311.looks_like(first):
        return "open311"
    if ngsi.looks_like(first):
        return "ngsi-ld" if ngsi.is_ld(first) else "ngsi-v2"
    if "subscriptionId" in doc if isinstance(doc, dict) else False:
        return "ngsi-v2"
    return None


Parser = Callable[[Any, ParseOutput, int], None]


def _canonical(doc: Any, out: ParseOutput, group: int) -> None:
    canonical.parse(doc, out)


def _ngsi_auto(doc: Any, out: ParseOutput, group: int) -> None:
    ngsi.parse(doc, out, group=group)


def _ngsi_v2(doc: Any, out: ParseOutput, group: int) -> None:
    ngsi.parse(doc, out, group=group, ld=False)


def _ngsi_ld(doc: Any, out: ParseOutput, group: int) -> None:
    ngsi.parse(doc, out, group=group, ld=True)


def _sensorthings(doc: Any, out: ParseOutput, group: int) -> None:
    sensorthings.parse(doc, out, group=group)


def _open311(doc: Any, out: ParseOutput, group: int) -> None:
    open311.parse(doc, out, group=group)


_PARSERS: dict[str, tuple[Parser, Callable[[Any], Any]]] = {
    "canonical": (_canonical, lambda doc: doc),
    "ngsi": (_ngsi_auto, ngsi.unwrap),
    "ngsi-v2": (_ngsi_v2, ngsi.unwrap),
    "ngsi-ld": (_ngsi_ld, ngsi.unwrap),
    "sensorthings": (_sensorthings, sensorthings.unwrap),
    "open311": (_open311, lambda doc: doc),
}

MAX_BATCH = 10_000


def parse_document(doc: Any, fmt: str) -> ParseOutput:
    """Run ``fmt``'s parser over one decoded document (an object or a batch array).

    Every element is parsed on its own: a bad element becomes a Problem naming its index
    and the others still go through.
    """
    parser, unwrap = _PARSERS[fmt]
    out = ParseOutput()
    body = unwrap(doc)
    if isinstance(body, list):
        if not body:
            out.problems.append(Problem(RejectReason.schema_violation, "empty batch"))
            return out
        if len(body) > MAX_BATCH:
            detail = f"batch of {len(body)} elements (at most {MAX_BATCH})"
            out.problems.append(Problem(RejectReason.schema_violation, detail))
            return out
        for index, element in enumerate(body):
            before = len(out.items)
            try:
                parser(element, out, index)
            except SchemaError as exc:
                del out.items[before:]
                out.problems.append(Problem(RejectReason.schema_violation, f"[{index}] {exc}"))
        return out
    try:
        parser(body, out, 0)
    except SchemaError as exc:
        del out.items[:]
        out.problems.append(Problem(RejectReason.schema_violation, str(exc)))
    return out
