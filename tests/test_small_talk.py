"""Which whole messages are small talk (answered politely at once) and which still go to the help center."""

from __future__ import annotations

import pytest

from assistant.small_talk import small_talk, small_talk_reply


@pytest.mark.parametrize(("message", "kind"), [
    ("hi", "greeting"), ("Hello there :)", "greeting"), ("Hi, how are you doing?", "greeting"),
    ("good morning", "greeting"), ("Thanks, that helps!", "thanks"), ("thank you so much", "thanks"),
    ("ok bye, thanks", "goodbye"), ("Thank you! Bye!", "goodbye"),
    ("您好！", "greeting"), ("好的，谢谢", "thanks"), ("非常感谢", "thanks"), ("再见", "goodbye"),
])
def test_small_talk_is_recognised_in_english_and_chinese(message, kind):
    assert small_talk(message) == kind


@pytest.mark.parametrize("message", [
    "hi, signed up 20 min ago and still no confirmation mail??", "thanks but where is my order",
    "how are you handling my refund?", "Can I pay with PayPal?", "yes", "ok", "1234",
    "你好，我的退款什么时候到账？", "退货期限是多少天？", "谢谢，怎么修改收货地址",
])
def test_a_message_that_asks_or_says_anything_else_is_not_small_talk(message):
    assert small_talk(message) is None


def test_the_reply_is_in_the_customer_s_language_and_names_the_company():
    assert "Lumen Outfitters" in small_talk_reply("greeting", "hello", "Lumen Outfitters")
    assert small_talk_reply("thanks", "谢谢", "Lumen Outfitters") == "不客气！还有其他可以帮您的吗？"
