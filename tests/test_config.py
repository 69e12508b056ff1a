from pathlib import Path

import pytest

from assistant.config import ConfigError, load_settings, settings_table


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "assistant.yaml"
    path.write_text(text)
    return path


def test_precedence_file_env_flag_and_sources(tmp_path):
    config = write(tmp_path, "port: 9001\nvllm:\n  port: 8100\ncompany_name: Acme\n")
    loaded = load_settings(config, flags={"port": 9003},
                           environ={"ASSISTANT_PORT": "9002", "ASSISTANT_VLLM__PORT": "8200"})
    s = loaded.settings
    assert (s.port, s.vllm.port, s.company_name) == (9003, 8200, "Acme")
    assert loaded.sources["port"] == "flag"
    assert loaded.sources["vllm.port"] == "env ASSISTANT_VLLM__PORT"
    assert loaded.sources["company_name"] == str(config)
    assert loaded.sources["engine"] == "default"
    rows = {key: (value, source) for key, value, source in settings_table(loaded)}
    assert rows["vllm.port"] == (8200, "env ASSISTANT_VLLM__PORT")


def test_bad_value_names_key_value_and_source(tmp_path):
    config = write(tmp_path, "vllm:\n  port: 70000\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ={})
    message = str(err.value)
    assert "vllm.port=70000" in message and str(config) in message


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError, match="ASSISTANT_ENGINE"):
        load_settings(environ={"ASSISTANT_ENGINE": "llamacpp"})


def test_unknown_key_is_refused_with_the_known_ones(tmp_path):
    config = write(tmp_path, "prot: 9000\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'prot'.*port"):
        load_settings(config, environ={})


def test_invalid_yaml_names_file_and_line(tmp_path):
    config = write(tmp_path, "port: 9000\nvllm: [unclosed\n")
    with pytest.raises(ConfigError, match=r"assistant.yaml:\d+: not valid YAML"):
        load_settings(config, environ={})


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings("/nonexistent/assistant.yaml", environ={})


def test_defaults_put_state_under_home(tmp_path):
    s = load_settings(flags={"home": str(tmp_path)}, environ={}).settings
    assert s.effective_database_url == f"sqlite:///{tmp_path}/assistant.db"
    assert s.models_dir == tmp_path / "models"
    assert "Lumen Outfitters" in s.rendered_system_prompt()
