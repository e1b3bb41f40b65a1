"""Structured logs: one JSON object per line on stderr, with personal data and secrets masked.

Why: operators ship worker logs to a log store and search them by field (`worker`,
`topology`, `logger`, extras such as `topic` or `incident_id`); a city's logs must never
hold a citizen's phone number, ID-card number or e-mail, nor a password. Masking happens
in a filter on the handler, so every record is cleaned whatever logger emitted it and
whatever the format (JSON or text): the message after %-formatting, every extra field, and
the formatted exception.

Personal data is masked by :func:`pipeline.ingest.pii.mask_personal_data` when that module
exists, and always also by the small fallback patterns here (mainland mobile numbers,
18-digit resident ID numbers, e-mail addresses). Credentials: ``password=...``-style
pairs (also in JSON and YAML-ish text), ``scheme://user:pass@host`` URLs, bearer/basic
tokens, pydantic ``SecretStr`` values passed as arguments or extras, and the raw values of
secrets registered with :func:`add_secret` (``configure_logging(secrets=...)``).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from pydantic import SecretStr

__all__ = [
    "JsonFormatter",
    "RedactingFilter",
    "add_secret",
    "configure_logging",
    "redact",
]

MASK = "***"

#: LogRecord attributes that are not user extras.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName", "worker", "topology"}
)

# -- personal data (fallback; pipeline.ingest.pii is the primary masker) ----------------------

_MOBILE = re.compile(r"(?<![\d])(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![\d])")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def _mask_pii_fallback(text: str) -> str:
    """Phone 13812345678 -> 138****5678, ID -> 110101********, e-mail -> a***@host."""
    text = _ID_NUMBER.sub(lambda m: f"{m[1]}{'*' * 12}", text)
    text = _MOBILE.sub(lambda m: f"{m[1]}****{m[3]}", text)
    return _EMAIL.sub(lambda m: f"{m[1]}{MASK}@{m[2]}", text)


def _load_pii_masker() -> Callable[[str], str] | None:
    try:
        module = importlib.import_module("pipeline.ingest.pii")
    except ImportError:
        return None
    masker = getattr(module, "mask_personal_data", None)
    return masker if callable(masker) else None


_pii_masker: Callable[[str], str] | None = _load_pii_masker()

# -- credentials --------------------------------------------------------------------------

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@")
_SECRET_PAIR = re.compile(
    r"(?i)(?P<key>\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credentials?)[\w.-]*)"
    r"(?P<sep>[\"']?\s*[:=]\s*)"
    r"(?P<val>\"[^\"]*\"|'[^']*'|[^\s,;&}\]]+)"
)
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def add_secret(value: SecretStr | str | None) -> None:
    """Mask this exact value wherever it appears in a log record (e.g. a DB password)."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if raw and len(raw) >= 4:  # shorter values would mask ordinary words and numbers
        with _secrets_lock:
            _secrets.add(raw)


def _mask_credentials(text: str) -> str:
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m[1]} {MASK}", text)

    def pair(m: re.Match[str]) -> str:
        val = m["val"]
        quote = val[0] if val[:1] in ("'", '"') else ""
        return f"{m['key']}{m['sep']}{quote}{MASK}{quote}"

    text = _SECRET_PAIR.sub(pair, text)
    for raw in sorted(_secrets, key=len, reverse=True):
        text = text.replace(raw, MASK)
    return text


def redact(text: str) -> str:
    """Text with personal data and credentials masked; idempotent."""
    if _pii_masker is not None:
        text = _pii_masker(text)
    return _mask_credentials(_mask_pii_fallback(text))


def _clean(value: Any) -> Any:
    """An extra's value, JSON-able and masked (SecretStr never shows its value)."""
    if isinstance(value, SecretStr):
        return "**********"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return redact(str(value))


def _arg(value: Any) -> Any:
    return "**********" if isinstance(value, SecretStr) else value


class RedactingFilter(logging.Filter):
    """Masks the message, the extras and the exception text of every record it passes."""

    def __init__(self, worker: str | None = None, topology: str | None = None) -> None:
        super().__init__()
        self.worker = worker
        self.topology = topology

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = {k: _arg(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(_arg(a) for a in record.args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        for key in list(vars(record)):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _clean(getattr(record, key)))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.worker = self.worker
        record.topology = self.topology
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, worker, topology, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "worker": getattr(record, "worker", None),
            "topology": getattr(record, "topology", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in payload:
                payload[key] = _clean(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        return orjson.dumps(payload, default=str).decode()


class _TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal; still one line per record plus any traceback."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(worker)s] %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


_HANDLER_MARK = "_cityops_handler"


def configure_logging(
    level: int | str = "INFO",
    *,
    json: bool = True,
    worker: str | None = None,
    topology: str | None = None,
    secrets: Iterable[SecretStr | str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install the cityops handler on the root logger (replacing an earlier one) and return it.

    `worker` defaults to ``<hostname>-<pid>``; `secrets` are values to mask wherever they
    appear (pass ``settings.clickhouse_password``); `stream` defaults to ``sys.stderr``.
    """
    for secret in secrets:
        add_secret(secret)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactingFilter(worker or f"{socket.gethostname()}-{os.getpid()}", topology))
    handler.setFormatter(JsonFormatter() if json else _TextFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)
    return handler
