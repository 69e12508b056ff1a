import json

import pytest

from alignment.transcripts import InvalidLine, parse_preference, parse_transcript, read_file


def write_lines(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return path


GOOD = {"id": "c1", "messages": [{"role": "user", "content": "Where is my parcel?"},
                                 {"role": "agent", "content": "It arrives tomorrow."}], "metadata": {"channel": "web"}}


def test_bad_lines_are_reported_with_file_line_and_reason_and_skipped(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [
        GOOD,
        "{not json",
        {"id": "c2", "messages": [{"role": "customer", "content": "hi"}]},
        {"id": "c3", "messages": [{"role": "user", "content": "  "}, {"role": "agent", "content": "x"}]},
        {"id": "c4", "messages": [{"role": "user", "content": "hello?"}]},
        {"id": "c5", "messages": GOOD["messages"], "extra": 1},
        "",
        {**GOOD, "id": "c6"},
    ])
    report = read_file(path, parse_transcript)
    assert [t.id for t in report.rows] == ["c1", "c6"]
    assert report.rows[1].where == f"{path}:8"
    assert report.errors == [
        f"{path}:2: not valid JSON (Expecting property name enclosed in double quotes)",
        f"{path}:3: messages[0].role is 'customer'; expected one of system, user, assistant, agent, tool",
        f"{path}:4: messages[0].content is empty",
        f"{path}:5: the conversation never has an assistant or agent reply to a user message",
        f"{path}:6: unknown field(s) extra; expected id, messages, metadata",
    ]


def test_strict_stops_at_the_first_bad_line(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [GOOD, {"id": "", "messages": []}, "{broken"])
    with pytest.raises(InvalidLine, match=r"t\.jsonl:2: 'id' must be a non-empty string"):
        read_file(path, parse_transcript, strict=True)


def test_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(InvalidLine, match="not UTF-8 text"):
        read_file(path, parse_transcript)


def test_preferences_are_validated(tmp_path):
    prompt = [{"role": "user", "content": "Can I return shoes?"}]
    path = write_lines(tmp_path / "p.jsonl", [
        {"prompt": prompt, "chosen": [{"role": "assistant", "content": "Yes, within 30 days."}],
         "rejected": [{"role": "assistant", "content": "No."}]},
        {"prompt": prompt, "chosen": [{"role": "assistant", "content": "Same"}],
         "rejected": [{"role": "assistant", "content": "Same "}]},
        {"prompt": prompt, "chosen": [{"role": "user", "content": "x"}],
         "rejected": [{"role": "assistant", "content": "y"}]},
    ])
    report = read_file(path, parse_preference)
    assert len(report.rows) == 1 and report.rows[0].chosen[0]["content"] == "Yes, within 30 days."
    assert report.errors == [
        f"{path}:2: 'chosen' equals 'rejected': the pair teaches nothing",
        f"{path}:3: chosen[0].role is 'user'; expected one of assistant",
    ]


@pytest.mark.parametrize(("message", "reason"), [
    ({"role": "user", "content": "x", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
     "only an assistant or agent turn calls actions"),
    ({"role": "agent", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]},
     "arguments is not JSON"),
    ({"role": "agent", "content": "", "tool_calls": [{"function": {"arguments": "{}"}}]},
     "function must be"),
    ({"role": "agent", "content": "", "tool_calls": []}, "non-empty list"),
])
def test_tool_calls_in_transcripts_are_checked(message, reason):
    row = {"id": "t", "messages": [{"role": "user", "content": "where is 1042?"}, message,
                                   {"role": "agent", "content": "It has shipped."}]}
    with pytest.raises(ValueError, match=reason):
        parse_transcript(row, "f.jsonl:1")
    ok = {"id": "t", "messages": [{"role": "user", "content": "where is 1042?"},
                                  {"role": "agent", "content": "", "tool_calls": [
                                      {"id": "c1", "type": "function",
                                       "function": {"name": "order_status", "arguments": '{"order_id": "1042"}'}}]},
                                  {"role": "tool", "tool_call_id": "c1", "content": '{"status": "Shipped"}'},
                                  {"role": "agent", "content": "It has shipped."}]}
    assert parse_transcript(ok, "f.jsonl:1").messages[1]["tool_calls"][0]["function"]["name"] == "order_status"
