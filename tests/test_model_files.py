import json

import pytest

from assistant.model_files import DEFAULT_MODEL_NAME, ModelNotFoundError, resolve_model


def test_hf_folder_is_used_as_is(tiny_model_dir, tmp_path):
    resolved = resolve_model(str(tiny_model_dir), tmp_path)
    assert resolved.path == str(tiny_model_dir.resolve()) and not resolved.is_hub_id


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"has no config\.json"):
        resolve_model(str(tmp_path / "empty"), tmp_path)


def test_missing_paths_and_gguf_are_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="GGUF file not found"):
        resolve_model(str(tmp_path / "m.gguf"), tmp_path)
    with pytest.raises(ModelNotFoundError, match="is not 'default'"):
        resolve_model("./nowhere/model", tmp_path)


def test_hub_id_is_passed_through():
    resolved = resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct", None)
    assert resolved.is_hub_id and resolved.name == "SmolLM2-360M-Instruct"


def test_default_model_is_converted_once_from_the_packaged_gguf(default_model_dir):
    from transformers import AutoConfig

    assert DEFAULT_MODEL_NAME.startswith("SmolLM2")
    config = AutoConfig.from_pretrained(default_model_dir)
    assert config.model_type == "llama" and "quantization_config" not in json.loads(
        (default_model_dir / "config.json").read_text())
    mtime = (default_model_dir / "model.safetensors").stat().st_mtime_ns
    again = resolve_model("default", default_model_dir.parent)  # cached: no second conversion
    assert again.path == str(default_model_dir)
    assert (default_model_dir / "model.safetensors").stat().st_mtime_ns == mtime
