"""Which format a raw message is in, and driving its parser over a (possibly batched) document.

The formats are whatever the modules of this package expose as ``ADAPTERS``
(:class:`~pipeline.ingest.adapters.base.Adapter`), found at import by :func:`discover`: a new
input format is one new module, and nothing here names a format.

Header first: ``cityops-format`` names a format or one of its adapter's ``aliases`` (``ngsi``
is NGSI of either flavour), then ``content-type`` (an adapter's ``content_types``:
``application/ld+json`` is NGSI-LD); otherwise the shape of the (first) object decides. A
header naming an unknown format is refused (``unknown_format``) rather than guessed around:
the producer said something wrong.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from pipeline.ingest import adapters as _this_package
from pipeline.ingest.adapters.base import (
    Adapter,
    ParseOutput,
    Problem,
    SchemaError,
    no_envelope,
)
from pipeline.models import RejectReason

__all__ = [
    "FORMATS",
    "FORMAT_HEADER",
    "MAX_BATCH",
    "REGISTRY",
    "AdapterRegistry",
    "HeaderError",
    "detect_format",
    "discover",
    "format_from_headers",
    "parse_document",
]

FORMAT_HEADER = "cityops-format"
MAX_BATCH = 10_000

HeadersLike = Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None


class HeaderError(ValueError):
    """The format header names no known format."""


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _listing_key(adapter: Adapter) -> tuple[int, str]:
    return adapter.order, adapter.name


def discover(package: ModuleType) -> tuple[Adapter, ...]:
    """Every adapter that a module of ``package`` exposes as ``ADAPTERS``, in listing order.

    Why automatic: a list kept here would be one more place a new format must be named.
    """
    found: list[Adapter] = []
    for module_info in pkgutil.iter_modules(package.__path__):
        qualified = f"{package.__name__}.{module_info.name}"
        if qualified == __name__:
            continue
        module = importlib.import_module(qualified)
        for adapter in getattr(module, "ADAPTERS", ()):
            if not isinstance(adapter, Adapter):
                msg = f"{qualified}.ADAPTERS holds {adapter!r}, not an Adapter"
                raise TypeError(msg)
            found.append(adapter)
    return tuple(sorted(found, key=_listing_key))


class AdapterRegistry:
    """A set of adapters, indexed for the three questions a message asks: declared, shaped, parsed.

    Refuses, when built, two adapters claiming one name, header value or detection priority:
    which of them a message meant would otherwise depend on file names.
    """

    def __init__(self, adapters: Iterable[Adapter]) -> None:
        self.adapters = tuple(sorted(adapters, key=_listing_key))
        self._by_name: dict[str, Adapter] = {}
        self._by_header: dict[str, str] = {}
        for adapter in self.adapters:
            if self._by_name.setdefault(adapter.name, adapter) is not adapter:
                msg = f"two adapters are named {adapter.name!r}"
                raise ValueError(msg)
            for value in (adapter.name, *adapter.aliases):
                taken = self._by_header.setdefault(value.lower(), adapter.name)
                if taken != adapter.name:
                    msg = f"header value {value!r} names both {taken!r} and {adapter.name!r}"
                    raise ValueError(msg)
        ranked = sorted(
            ((a.priority, a) for a in self.adapters if a.priority is not None),
            key=lambda pair: pair[0],
        )
        for (low, first), (high, second) in zip(ranked, ranked[1:], strict=False):
            if low == high:
                msg = f"{first.name!r} and {second.name!r} share detection priority {low}"
                raise ValueError(msg)
        self._detection = tuple(adapter for _, adapter in ranked)
        self._recognisers = tuple((a.looks_like, a.name) for a in self._detection)
        # Every format shape detection can name, in listing order (header-only ones are not).
        self.formats = tuple(a.name for a in self.adapters if a.priority is not None)
        self._content_types = tuple(
            (fragment, a.name) for a in self.adapters for fragment in a.content_types
        )
        # One call per distinct envelope, in listing order (NGSI's three adapters share one).
        self._openers: tuple[Callable[[Any], Any], ...] = tuple(
            dict.fromkeys(
                a.unwrap
                for a in self.adapters
                if a.priority is not None and a.unwrap is not no_envelope
            )
        )

    def from_headers(self, headers: HeadersLike) -> str | None:
        """The format a producer declared (``ngsi``: NGSI of either flavour), or None."""
        if not headers:
            return None
        items = headers.items() if isinstance(headers, Mapping) else headers
        content_type: str | None = None
        for key, value in items:
            name = key.lower() if isinstance(key, str) else _text(key).lower()
            if name == FORMAT_HEADER:
                declared = _text(value).strip().lower()
                found = self._by_header.get(declared)
                if found is None:
                    msg = f"{FORMAT_HEADER} header names no known format: {declared[:40]!r}"
                    raise HeaderError(msg)
                return found
            if name == "content-type":
                content_type = _text(value).lower()
        if content_type is not None:
            for fragment, fmt in self._content_types:
                if fragment in content_type:
                    return fmt
        return None

    def _first_object(self, doc: Any) -> Any:
        """The first element inside the first envelope that opens ``doc`` (or of a bare array)."""
        body = doc
        for unwrap in self._openers:
            opened = unwrap(doc)
            if opened is not doc:
                body = opened
                break
        if isinstance(body, list):
            return body[0] if body else None
        return body

    def detect(self, doc: Any) -> str | None:
        """The format of a decoded document from its shape (the first element of a batch)."""
        first = self._first_object(doc)
        if not isinstance(first, dict):
            return None
        for looks_like, name in self._recognisers:
            if looks_like(first):
                return name
        for adapter in self._detection:
            if adapter.claims_envelope(doc):
                return adapter.name
        return None

    def parse(self, doc: Any, fmt: str) -> ParseOutput:
        """Run ``fmt``'s parser over one decoded document (an object or a batch array).

        Every element is parsed on its own: a bad element becomes a Problem naming its index
        and the others still go through.
        """
        adapter = self._by_name[fmt]
        parser = adapter.parse
        out = ParseOutput()
        body = adapter.unwrap(doc)
        if isinstance(body, list):
            if not body:
                out.problems.append(Problem(RejectReason.schema_violation, "empty batch"))
                return out
            if len(body) > MAX_BATCH:
                detail = f"batch of {len(body)} elements (at most {MAX_BATCH})"
                out.problems.append(Problem(RejectReason.schema_violation, detail))
                return out
            out.elements = body
            for index, element in enumerate(body):
                before = len(out.items)
                try:
                    parser(element, out, index)
                except SchemaError as exc:
                    del out.items[before:]
                    detail = f"[{index}] {exc}"
                    out.problems.append(Problem(RejectReason.schema_violation, detail, index))
            return out
        try:
            parser(body, out, 0)
        except SchemaError as exc:
            del out.items[:]
            out.problems.append(Problem(RejectReason.schema_violation, str(exc)))
        return out


REGISTRY = AdapterRegistry(discover(_this_package))
FORMATS = REGISTRY.formats


def format_from_headers(headers: HeadersLike) -> str | None:
    """The format a producer declared, ``ngsi`` for NGSI of either flavour, or None."""
    return REGISTRY.from_headers(headers)


def detect_format(doc: Any) -> str | None:
    """The format of a decoded document from its shape (the first element of an array)."""
    return REGISTRY.detect(doc)


def parse_document(doc: Any, fmt: str) -> ParseOutput:
    """Run ``fmt``'s parser over one decoded document (an object or a batch array)."""
    return REGISTRY.parse(doc, fmt)
