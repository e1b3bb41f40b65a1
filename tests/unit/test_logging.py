"""Structured logs carry the promised fields and never a citizen's data or a credential."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from pipeline.logging import add_secret, configure_logging, redact

PHONE = "13812345678"
ID_NUMBER = "11010519491231002X"
EMAIL = "zhang.wei@example.com"
PASSWORD = "hunter2-Sup3r"  # noqa: S105 (a fake credential the filter must mask)


@pytest.fixture
def capture() -> Iterator[io.StringIO]:
    """The cityops handler writing into a buffer; removed afterwards."""
    buffer = io.StringIO()
    handler = configure_logging(
        "DEBUG",
        worker="w-1",
        topology="shanghai",
        stream=buffer,
        secrets=[SecretStr("s3cr3t-db-pw")],
    )
    try:
        yield buffer
    finally:
        logging.getLogger().removeHandler(handler)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_line_has_the_consistent_fields(capture: io.StringIO) -> None:
    logging.getLogger("pipeline.engine.worker.app").info(
        "flushed %d rows", 120, extra={"topic": "cityops.shanghai.readings", "partition": 3}
    )
    (line,) = lines(capture)
    assert line["level"] == "info"
    assert line["logger"] == "pipeline.engine.worker.app"
    assert line["msg"] == "flushed 120 rows"
    assert line["worker"] == "w-1"
    assert line["topology"] == "shanghai"
    assert line["topic"] == "cityops.shanghai.readings"
    assert line["partition"] == 3
    ts = datetime.fromisoformat(str(line["ts"]))
    offset = ts.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0


def test_personal_data_is_masked_in_message_args_and_extras(capture: io.StringIO) -> None:
    log = logging.getLogger("pipeline.ingest.normalize")
    log.warning("report from %s (ID %s, mail %s)", PHONE, ID_NUMBER, EMAIL)
    log.info("citizen", extra={"caller": f"+86 {PHONE}", "profile": {"id": ID_NUMBER}})
    log.info(f"free text 138-1234-5678 and {EMAIL.upper()}")
    out = capture.getvalue()
    for raw in (PHONE, ID_NUMBER, EMAIL, "138-1234-5678", EMAIL.upper(), "19491231"):
        assert raw not in out
    first, second, third = lines(capture)
    assert "138****5678" in str(first["msg"])
    assert "110***********002X" in str(first["msg"])  # pii.py's hint: province and checksum
    assert "z***@example.com" in str(first["msg"])
    assert str(second["caller"]).endswith("138****5678")
    assert ID_NUMBER not in json.dumps(second["profile"])


def test_credentials_are_masked(capture: io.StringIO) -> None:
    log = logging.getLogger("pipeline.sinks")
    log.error("connect failed: http://cityops:%s@ch.internal:8123/?database=x", PASSWORD)
    log.error("settings password=%s token: abc123def456 api_key='k-9f8e7d6c'", PASSWORD)
    log.error('payload {"password": "%s", "user": "ops"}', PASSWORD)
    log.error("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig")
    log.error("raw secret leaked: s3cr3t-db-pw")
    log.error("pydantic secret %s", SecretStr(PASSWORD), extra={"pw": SecretStr(PASSWORD)})
    out = capture.getvalue()
    for raw in (PASSWORD, "abc123def456", "k-9f8e7d6c", "eyJhbGciOiJIUzI1NiJ9", "s3cr3t-db-pw"):
        assert raw not in out
    msgs = [str(line["msg"]) for line in lines(capture)]
    assert msgs[0] == "connect failed: http://cityops:***@ch.internal:8123/?database=x"
    assert '"user": "ops"' in msgs[2]
    assert lines(capture)[5]["pw"] == "**********"


def test_exception_text_is_masked(capture: io.StringIO) -> None:
    try:
        msg = f"cannot reach clickhouse://admin:{PASSWORD}@db for caller {PHONE}"
        raise ConnectionError(msg)
    except ConnectionError:
        logging.getLogger("pipeline.sinks").exception("insert failed")
    (line,) = lines(capture)
    assert "ConnectionError" in str(line["exc"])
    assert PASSWORD not in capture.getvalue()
    assert PHONE not in capture.getvalue()


def test_text_mode_masks_too() -> None:
    buffer = io.StringIO()
    handler = configure_logging("INFO", json=False, worker="w-2", stream=buffer)
    try:
        logging.getLogger("cli").info("call %s, password=%s", PHONE, PASSWORD)
    finally:
        logging.getLogger().removeHandler(handler)
    out = buffer.getvalue()
    assert "[w-2]" in out
    assert PHONE not in out
    assert PASSWORD not in out


def test_configure_twice_keeps_one_handler() -> None:
    first = configure_logging("INFO", stream=io.StringIO())
    second = configure_logging("WARNING", stream=io.StringIO())
    try:
        root = logging.getLogger()
        assert first not in root.handlers
        assert second in root.handlers
        assert root.level == logging.WARNING
    finally:
        logging.getLogger().removeHandler(second)


def test_short_secrets_are_not_registered() -> None:
    add_secret("ab")
    assert redact("ab cab") == "ab cab"


def test_ordinary_text_is_untouched() -> None:
    text = "window 2024-05-01T10:00:00Z district 310101 pm25=75.0 count 1234567"
    assert redact(text) == text


@settings(max_examples=150)
@given(
    prefix=st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=20),
    middle=st.sampled_from(["3", "5", "8", "9"]),
    digits=st.text(alphabet="0123456789", min_size=9, max_size=9),
)
def test_any_mobile_number_is_masked(prefix: str, middle: str, digits: str) -> None:
    phone = f"1{middle}{digits}"
    masked = redact(f"{prefix}{phone} end")
    assert phone not in masked
    assert masked.endswith(f"{phone[:3]}****{phone[-4:]} end")
