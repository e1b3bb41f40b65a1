"""Masking of personal data in free text (citizen report descriptions).

Why: reports flow to many downstream systems and are kept for a month; a caller's mobile
number or ID-card number in a description must not travel with them (PIPL). Masking keeps
a *hint* so an operator can still tell two numbers apart or match a call-back:

==============================  =====================================================
what                            masked as
==============================  =====================================================
mainland mobile (1[3-9]x, 11    prefix kept, first 3 and last 4 digits:
digits, optional +86/0086/86,   ``+86 138****5678`` (separators inside are dropped)
spaces or dashes inside)
landline with area code         area code and last 4 digits: ``021-****5678``,
(``0xx(x)-xxxxxxx(x)``,         ``(0755)****5678``
``(0xx)xxxxxxxx``)
18-digit resident ID number,    first 3 and last 4 characters:
valid GB 11643 checksum         ``310***********1234``
18-character run that looks     masked exactly like an ID (see below)
like an ID but fails the
checksum
e-mail address                  first character of the local part and the domain:
                                ``z***@example.com``
==============================  =====================================================

Choices, documented because they trade privacy against usefulness:

- An 18-character run (17 digits and a digit or ``X``) whose first two digits are a
  province code and whose characters 7-14 are a real calendar date (1900-2099) but whose
  checksum is wrong is most likely a mistyped ID number, which identifies a person just as
  well: it is masked too (kind ``id_like``). Any other long digit run (order and tracking
  numbers, invoice numbers, dates written together, prices) is left alone: masking them
  would destroy the operational content of the report and they are not personal data.
- 15-digit first-generation ID numbers (invalid since 2013) and bank card numbers are not
  masked: their shape cannot be told from order numbers without too many false positives.
- Full-width digits (``１３８…``) are recognized as digits; the text is matched on a
  same-length ASCII-folded copy so positions line up with the original.

Everything is compiled once at import; masking a text without any candidate costs one
regex scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

__all__ = ["PersonalData", "find_personal_data", "is_valid_resident_id", "mask_personal_data"]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# GB/T 2260 province-level codes (first two digits of an ID number).
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82 83 91".split()
)

_FULLWIDTH = str.maketrans("０１２３４５６７８９＋－（）＠．", "0123456789+-()@.")

_PATTERN = re.compile(
    r"""
    (?P<id>(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z]))
    |
    (?P<mobile>(?<![0-9+])(?P<mprefix>(?:\+86|0086|86)[ -]?)?
        (?P<mhead>1[3-9][0-9])[ -]?(?P<mmid>[0-9]{4})[ -]?(?P<mtail>[0-9]{4})(?![0-9]))
    |
    (?P<landline>(?<![0-9])(?:\((?P<larea1>0[1-9][0-9]{1,2})\)[ -]?
        |(?P<larea2>0[1-9][0-9]{1,2})[ -])
        (?P<lnum>[0-9]{3,4}[ -]?[0-9]{4})(?![0-9]))
    |
    (?P<email>(?P<elocal>[A-Za-z0-9][A-Za-z0-9._%+-]{0,63})@
        (?P<edomain>[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?
        (?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}))
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class PersonalData:
    """One piece of personal data found in a text: kind, span and its masked form."""

    kind: str  # mobile | landline | id | id_like | email
    start: int
    end: int
    masked: str


def is_valid_resident_id(number: str) -> bool:
    """Whether ``number`` is an 18-character ID with a valid GB 11643 checksum."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def _looks_like_id(number: str) -> bool:
    """Province code and a real birth date in place: a (possibly mistyped) ID number."""
    if number[:2] not in _PROVINCES:
        return False
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if not 1900 <= year <= 2099:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _classify(match: re.Match[str]) -> PersonalData | None:
    kind = match.lastgroup
    start, end = match.span()
    if kind == "id":
        number = match.group("id")
        if not _looks_like_id(number):
            return None
        label = "id" if is_valid_resident_id(number) else "id_like"
        return PersonalData(label, start, end, number[:3] + "*" * 11 + number[-4:])
    if kind == "mobile":
        prefix = match.group("mprefix") or ""
        masked = f"{prefix}{match.group('mhead')}****{match.group('mtail')}"
        return PersonalData("mobile", start, end, masked)
    if kind == "landline":
        digits = match.group("lnum").replace(" ", "").replace("-", "")
        area = match.group("larea1")
        shown = f"({area})" if area is not None else f"{match.group('larea2')}-"
        masked = shown + "*" * (len(digits) - 4) + digits[-4:]
        return PersonalData("landline", start, end, masked)
    if kind == "email":
        local = match.group("elocal")
        return PersonalData("email", start, end, f"{local[0]}***@{match.group('edomain')}")
    return None  # pragma: no cover - every alternative is named


def find_personal_data(text: str) -> list[PersonalData]:
    """Every piece of personal data in ``text``, in order, with its masked form."""
    scan = text.translate(_FULLWIDTH) if not text.isascii() else text
    found: list[PersonalData] = []
    for match in _PATTERN.finditer(scan):
        item = _classify(match)
        if item is not None:
            found.append(item)
    return found


def mask_personal_data(text: str) -> str:
    """``text`` with every mobile, landline, ID number and e-mail address masked."""
    found = find_personal_data(text)
    if not found:
        return text
    parts: list[str] = []
    last = 0
    for item in found:
        parts.append(text[last : item.start])
        parts.append(item.masked)
        last = item.end
    parts.append(text[last:])
    return "".join(parts)
