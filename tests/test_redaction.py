import pytest

from assistant.redaction import Redactor, cn_id_valid, luhn_valid


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("Write to jane.doe+orders@example.co.uk please", "Write to [EMAIL] please", "email"),
        ("My card is 4111 1111 1111 1111.", "My card is [CARD].", "card"),
        ("card 5500-0000-0000-0004 expired", "card [CARD] expired", "card"),
        ("call me on +49 30 1234 5678 tomorrow", "call me on [PHONE] tomorrow", "phone"),
        ("我的手机是13812345678，谢谢", "我的手机是[PHONE]，谢谢", "phone"),
        ("手机 +86 138 1234 5678", "手机 [PHONE]", "phone"),
        ("座机 010-12345678", "座机 [PHONE]", "phone"),
        ("US office (415) 555-0134", "US office [PHONE]", "phone"),
        ("身份证号 11010519491231002X 请核实", "身份证号 [NATIONAL_ID] 请核实", "national_id"),
        ("SSN 123-45-6789 on file", "SSN [NATIONAL_ID] on file", "national_id"),
    ],
)
def test_pii_is_replaced_and_counted(text, expected, kind):
    redactor = Redactor()
    assert redactor.redact(text) == expected
    assert redactor.counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "Order #100234 shipped on 2026-11-28 for 149.90 EUR",
        "My card ends in 1111",
        "Tracking number 1Z999AA10123456784",
        "4111 1111 1111 1112 is not a valid card",  # fails the Luhn check
        "ID 110105194912310021 has a wrong check digit",
        "Room 12, floor 3, 30 days to return",
    ],
)
def test_ordinary_numbers_are_kept(text):
    redactor = Redactor()
    assert redactor.redact(text) == text and not redactor.counts


def test_kinds_are_configurable_and_counts_accumulate():
    redactor = Redactor(kinds=("email",))
    assert redactor.redact("a@b.io and 4111111111111111") == "[EMAIL] and 4111111111111111"
    redactor.redact("c@d.io")
    assert redactor.counts == {"email": 2}
    with pytest.raises(ValueError, match="unknown PII kinds \\['passport'\\]"):
        Redactor(kinds=("passport",))


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert cn_id_valid("11010519491231002X") and not cn_id_valid("110105194912310021")
