"""Personal data masking on realistic Chinese and English report texts."""

from __future__ import annotations

import pytest

from pipeline.ingest.pii import find_personal_data, is_valid_resident_id, mask_personal_data

# A checksum-valid ID number built for tests (Huangpu 310101, born 1990-03-07).
VALID_ID = "310101199003072030"
VALID_ID_2 = "11010519491231002X"  # Beijing Chaoyang, 1949-12-31, check digit X


def test_checksum_helper() -> None:
    assert is_valid_resident_id(VALID_ID)
    assert is_valid_resident_id(VALID_ID.lower())
    assert is_valid_resident_id(VALID_ID_2)
    assert not is_valid_resident_id("310101199003072031")  # last digit wrong
    assert not is_valid_resident_id("31010119900307203")  # 17 characters
    assert not is_valid_resident_id("3101011990030720XX")
    assert not is_valid_resident_id("11010519491231002Y")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的手机13812345678，请回电", "我的手机138****5678，请回电"),
        ("联系电话：138-1234-5678", "联系电话：138****5678"),
        ("电话 138 1234 5678 王先生", "电话 138****5678 王先生"),
        ("Call +86 139 0000 1234 after 6pm", "Call +86 139****1234 after 6pm"),
        ("tel:+8613900001234", "tel:+86139****1234"),
        ("0086-15912345678", "0086-159****5678"),
        ("号码１３８１２３４５６７８", "号码138****5678"),
    ],
)
def test_mobile_numbers_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("物业电话021-63211234转分机", "物业电话021-****1234转分机"),
        ("Call (021)63211234 for the office", "Call (021)****1234 for the office"),
        ("深圳0755-1234567", "深圳0755-***4567"),
        ("北京 010 6512 3456", "北京 010-****3456"),
    ],
)
def test_landlines_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected


def test_valid_id_number_is_masked_with_a_hint() -> None:
    text = f"身份证号{VALID_ID}，住南京东路"
    assert mask_personal_data(text) == "身份证号310***********2030，住南京东路"
    [item] = find_personal_data(text)
    assert item.kind == "id"


def test_id_with_wrong_checksum_but_real_shape_is_masked_as_id_like() -> None:
    typo = "310101199003072031"
    assert mask_personal_data(f"ID {typo}") == "ID 310***********2031"
    assert [p.kind for p in find_personal_data(typo)] == ["id_like"]


@pytest.mark.parametrize(
    "text",
    [
        "订单号202405011234567890已付款",  # 18-digit order number starting with a date
        "快递单号 773012345678901 到了吗",  # 15-digit tracking number
        "Order 991234567890123456 shipped",  # province 99 does not exist
        "流水号 310101199013452031",  # month 13: not a date
        "价格 ¥1380.00，共 12345678 元",  # prices and amounts
        "2024-05-01 08:30 发现漏水",  # dates and times
        "20240501 巡查记录",
        "工单 1381234567890 已受理",  # 13 digits starting like a mobile
        "车牌沪A12345，门牌号1380号",
        "QQ 123456789",
    ],
)
def test_numbers_that_only_look_like_personal_data_are_kept(text: str) -> None:
    assert mask_personal_data(text) == text
    assert find_personal_data(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at zhang.san@example.com please", "mail me at z***@example.com please"),
        ("邮箱：li_si+city@mail.sh.gov.cn。", "邮箱：l***@mail.sh.gov.cn。"),
    ],
)
def test_email_addresses_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected


def test_everything_in_one_report() -> None:
    text = (
        f"黄浦区南京东路100号楼下水管爆裂，报修人张先生，手机13912345678，"
        f"身份证{VALID_ID_2}，邮箱 zs@example.com，座机021-63211234。订单号202405011234567890"
    )
    masked = mask_personal_data(text)
    assert masked == (
        "黄浦区南京东路100号楼下水管爆裂，报修人张先生，手机139****5678，"
        "身份证110***********002X，邮箱 z***@example.com，座机021-****1234。"
        "订单号202405011234567890"
    )
    kinds = [p.kind for p in find_personal_data(text)]
    assert kinds == ["mobile", "id", "email", "landline"]


def test_masking_is_idempotent() -> None:
    text = f"13812345678 {VALID_ID} a.b@example.org 021-63211234"
    once = mask_personal_data(text)
    assert mask_personal_data(once) == once
    assert "13812345678" not in once


def test_text_without_personal_data_is_returned_unchanged() -> None:
    text = "Streetlight broken at Huaihai Rd / Ruijin No.2 Rd since 2024-05-01"
    assert mask_personal_data(text) is text
