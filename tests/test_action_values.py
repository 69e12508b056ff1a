"""Argument values: the model copies what the customer said, our code writes dates and times as services take
them, and a value nobody said cannot be written."""

from __future__ import annotations

from datetime import date

import pytest

from assistant.actions.decision import (
    ActionCall,
    as_said,
    as_services_take,
    decision_schema,
    said_values,
    tools_from_openai,
)
from assistant.actions.values import parse_date, parse_time, value_kind
from assistant.engines.base import ChatMessage

FRIDAY = date(2019, 3, 1)


@pytest.mark.parametrize(("said", "day"), [
    ("today", "2019-03-01"), ("tomorrow please", "2019-03-02"), ("the day after tomorrow", "2019-03-03"),
    ("this Sunday", "2019-03-03"), ("next Monday", "2019-03-04"), ("next Friday", "2019-03-08"),
    ("Friday next week", "2019-03-08"), ("on March 7th", "2019-03-07"), ("the 2nd", "2019-03-02"),
    ("9th of March", "2019-03-09"), ("2019-03-12", "2019-03-12"), ("明天", "2019-03-02"), ("后天", "2019-03-03"),
    ("下周三", "2019-03-06"), ("3月9日", "2019-03-09"), ("12号", "2019-03-12"),
    ("January 5th", "2020-01-05"),  # a day already past this year is next year's
])
def test_what_customers_say_becomes_the_date_services_take(said, day):
    assert parse_date(said, FRIDAY).isoformat() == day


@pytest.mark.parametrize(("said", "clock"), [
    ("half past 3 in the afternoon", "15:30"), ("6 pm", "18:00"), ("around 18:00", "18:00"), ("7:15 am", "07:15"),
    ("at five in the evening", "17:00"), ("quarter to 8 pm", "19:45"), ("noon", "12:00"),
    ("afternoon 1:30", "13:30"), ("下午3点半", "15:30"), ("晚上8点", "20:00"),
])
def test_what_customers_say_becomes_the_time_services_take(said, clock):
    assert parse_time(said) == clock


def test_no_date_or_time_is_made_up():
    assert parse_date("a table for two please", FRIDAY) is None and parse_time("afternoon tea for 2") is None
    assert value_kind("check_in_date", {"type": "string"}) == "date"
    assert value_kind("pickup_time", {"type": "string"}) == "time"
    assert value_kind("when", {"type": "string", "format": "date"}) == "date"
    assert value_kind("timezone", {"type": "string"}) is None and value_kind("city", {"type": "string"}) is None


TOOLS = tools_from_openai([{"type": "function", "function": {
    "name": "ReserveRestaurant", "description": "Book a table",
    "parameters": {"type": "object", "properties": {
        "restaurant_name": {"type": "string"}, "date": {"type": "string"}, "time": {"type": "string"},
        "party_size": {"type": "string", "enum": ["1", "2", "3", "4"]},
        "order_id": {"type": "string", "pattern": "^[0-9]{4}$"}},
        "required": ["restaurant_name", "date"]}}}])


def test_values_are_copied_from_the_conversation_and_dates_are_written_for_the_service():
    conversation = [ChatMessage("user", "Book Sushi Ran for next Friday at half past 7 pm. My order is 1042."),
                    ChatMessage("assistant", "Sushi Ran, next Friday, 19:30: shall I book it?"),
                    ChatMessage("user", "Yes.")]
    values = said_values(conversation)
    assert {"Sushi Ran", "next Friday", "half past 7 pm", "1042"} <= set(values)
    arguments = decision_schema(TOOLS, False, values)["anyOf"][0]["properties"]["arguments"]["properties"]
    assert "Tokyo Grill" not in arguments["restaurant_name"]["enum"]  # nobody said it: it cannot be written
    assert arguments["order_id"]["enum"] == ["1042"]  # only the said values that fit the parameter
    assert arguments["party_size"] == {"type": "string", "enum": ["1", "2", "3", "4"]}
    gold = ActionCall("ReserveRestaurant", {"restaurant_name": "sushi ran", "date": "2019-03-08", "time": "19:30"})
    copied = as_said(gold, TOOLS, conversation, FRIDAY)  # what a copying model is trained to write
    assert copied.arguments == {"restaurant_name": "Sushi Ran", "date": "next Friday", "time": "19:30"}
    sent = as_services_take(ActionCall("ReserveRestaurant", {"restaurant_name": "Sushi Ran", "date": "next Friday",
                                                             "time": "half past 7 pm"}), TOOLS, FRIDAY)
    assert sent.arguments == {"restaurant_name": "Sushi Ran", "date": "2019-03-08", "time": "19:30"}


def test_an_action_whose_required_detail_was_not_said_cannot_be_chosen():
    conversation = [ChatMessage("user", "我想订餐厅")]  # no date said yet: the reply must ask for it
    schema = decision_schema(TOOLS, True, said_values(conversation))
    assert schema["anyOf"] == [{"type": "object", "properties": {"action": {"type": "null"}},
                                "required": ["action"], "additionalProperties": False}]
    assert "订餐厅" in said_values(conversation)  # Chinese without spaces: its substrings are the values


def test_a_file_of_dialogues_is_dated_by_its_calls_unless_rows_say(tmp_path):
    import json

    from alignment.action_examples import load_action_file
    from alignment.transcripts import InvalidLine

    tool = {"type": "function", "function": {"name": "GetWeather", "description": "Weather",
                                             "parameters": {"type": "object", "properties": {
                                                 "city": {"type": "string"}, "date": {"type": "string"}},
                                                 "required": ["city"]}}}

    def row(text, day, **extra):
        return json.dumps({"tools": [tool], "messages": [{"role": "user", "content": text}],
                           "call": {"name": "GetWeather", "arguments": {"city": "Oslo", "date": day}}} | extra)

    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join([row("Weather in Oslo tomorrow?", "2019-03-02"),
                               row("And the day after tomorrow in Oslo?", "2019-03-03"),
                               row("Oslo next Monday?", "2019-03-04"),
                               row("Oslo today?", "2026-12-02", today="2026-12-02")]) + "\n")
    rows = load_action_file(path)
    assert [r.today.isoformat() for r in rows] == ["2019-03-01"] * 3 + ["2026-12-02"]
    assert rows[0].target() == '{"action": "GetWeather", "arguments": {"city": "Oslo", "date": "tomorrow"}}'
    path.write_text(row("Oslo?", "2019-03-02", today="yesterday") + "\n")
    with pytest.raises(InvalidLine, match=r"rows.jsonl:1: field today: expected a date YYYY-MM-DD"):
        load_action_file(path)
