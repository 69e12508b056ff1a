import io
import json
import subprocess
import sys
import tempfile

import pytest

from assistant.cli import COMMANDS


def run_cli(*args, env=None, input_text=None, timeout=120):
    """The command in a subprocess, in a folder of its own (no ./assistant.yaml): for what needs a fresh process
    (its environment, `python -m assistant` itself); the other commands run in this process (`run_main`)."""
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True,
                              env=env, input=input_text, timeout=timeout, cwd=cwd)


def printable(text: str) -> str:
    """The tiny test model emits arbitrary bytes: compare what a terminal would show."""
    return "".join(ch for ch in text if ch.isprintable() and ch != "\ufffd")


def test_help_imports_nothing_heavy():
    """`assistant --help` stays instant because building the parser imports no heavy library (timing it here would
    measure the machine's load, not the code)."""
    code = ("import sys; from assistant.cli import build_parser; build_parser();"
            "print([m for m in ('torch','transformers','fastapi','gradio','sqlalchemy','vllm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("command", [list(words) for words, _, _ in COMMANDS])
def test_every_command_has_help_with_an_example(command, capsys):
    from assistant.cli import main

    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "example" in shown.lower()
    assert "assistant " + " ".join(command) in shown or (command == ["align", "sentiment"]
                                                          and "assistant sentiment train" in shown)


def test_config_show_reports_sources(tmp_path):
    config = tmp_path / "a.yaml"
    config.write_text("company_name: Acme Bikes\n")
    env = {"PATH": "/usr/bin:/bin", "ASSISTANT_VLLM__PORT": "8123", "HOME": str(tmp_path)}
    result = run_cli("config", "show", "--config", str(config), "--port", "9100", "--json", env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["company_name"] == {"value": "Acme Bikes", "source": str(config)}
    assert shown["vllm.port"] == {"value": 8123, "source": "env ASSISTANT_VLLM__PORT"}
    assert shown["port"] == {"value": 9100, "source": "flag"}


def test_bad_setting_exits_2_with_a_clear_message(tmp_path):
    result = run_cli("config", "show", env={"PATH": "/usr/bin:/bin", "ASSISTANT_PORT": "not-a-port",
                                            "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "port='not-a-port' (from env ASSISTANT_PORT)" in result.stderr


def run_main(monkeypatch, capsys, *args, input_text: str = "") -> tuple[int, str, str]:
    """The command in this process (`assistant.cli.main`), its stdin `input_text`: (exit status, stdout, stderr)."""
    from assistant.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(input_text))
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_model_is_a_clear_error(tmp_path, monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "chat", "--engine", "transformers", "--model", str(tmp_path / "nope"),
                            "--home", str(tmp_path), input_text="hi\n")
    assert code == 2
    assert "is not 'default', an existing HF model folder" in err


def test_terminal_chat_in_process_streams_and_stores(tmp_path, tiny_model_dir, monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, "chat", "--engine", "transformers", "--model", str(tiny_model_dir),
                              "--home", str(tmp_path), input_text="Where is my order?\n/quit\n")
    assert code == 0, err
    assert "assistant> " in out
    from assistant.store import Store

    store = Store(f"sqlite:///{tmp_path}/assistant.db")
    with store.session() as session:
        from sqlalchemy import select

        from assistant.store.schema import Message
        rows = session.scalars(select(Message).order_by(Message.id)).all()
        assert [(m.role, m.status) for m in rows] == [("user", "complete"), ("assistant", "complete")]
        assert rows[0].content == "Where is my order?"
        assert printable(rows[1].content) in printable(out)
    store.close()


def test_terminal_chat_streams_from_a_running_server(make_settings, tmp_path, monkeypatch, capsys):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.runtime import build_service
    from tests.fake_engine import FakeEngine

    service = build_service(make_settings(**{"auth.required": True}), make_engine=FakeEngine.build)
    key = service.store.keys.create_api_key("api", "terminal")
    with BackgroundServer(create_app(service, mount_views=False)) as url:
        code, _, err = run_main(monkeypatch, capsys, "chat", "--url", url, input_text="hi\n")
        assert code != 0 and "needs a key" in err and "--key" in err
        code, out, err = run_main(monkeypatch, capsys, "chat", "--url", url, "--key", key,
                                  input_text="Do you ship abroad?\n")
        assert code == 0, err
        with service.store.session() as session:
            from sqlalchemy import select

            from assistant.store.schema import Conversation
            conversation = session.scalars(select(Conversation)).one()
        assert conversation.channel == "terminal"
        user, answer = service.store.conversations.messages(conversation.id)
        assert user.content == "Do you ship abroad?" and answer.status == "complete"
        assert printable(answer.content) in printable(out)


def test_chat_with_no_server_says_how_to_start_one(tmp_path, monkeypatch, capsys):
    from assistant.ports import free_port

    code, _, err = run_main(monkeypatch, capsys, "chat", "--url", f"http://127.0.0.1:{free_port()}", input_text="hi\n")
    assert code != 0 and "assistant serve" in err


def test_serve_refuses_a_busy_port_before_starting_anything(tmp_path, monkeypatch, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run_main(monkeypatch, capsys, "serve", "--port", str(port), "--home", str(tmp_path),
                                "--engine", "transformers")
    assert code == 2 and f"port {port} on 127.0.0.1 is already in use" in err
    assert not (tmp_path / "models").exists()
