"""The embedded backend's llama.cpp build: without the AMX kernels that crashed it."""

from __future__ import annotations

import logging

import llama_cpp

import llm.embedded as embedded


def test_llama_cpp_is_installed_without_its_amx_kernels():
    """`make install` compiles llama.cpp without AMX: on an Intel Xeon that reports AMX its
    kernels crashed the embedded model at the first answer (SIGSEGV in
    ggml_backend_amx_mul_mat). A build with them fails here, by name, not there."""
    assert not embedded.llama_has_amx(), embedded.AMX_HINT


def test_a_build_with_amx_on_a_cpu_with_amx_is_named_in_the_log(monkeypatch, tmp_path, caplog):
    loaded = []

    class Llama:
        def __init__(self, **kwargs):
            loaded.append(kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", Llama)
    monkeypatch.setattr(embedded, "model_path", lambda _dir: tmp_path / "model.gguf")
    monkeypatch.setattr(embedded, "llama_has_amx", lambda: True)
    for cpu_amx, warned in ((False, False), (True, True)):
        monkeypatch.setattr(embedded, "cpu_has_amx", lambda cpu_amx=cpu_amx: cpu_amx)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="llm.embedded"):
            embedded.EmbeddedLLM(tmp_path).load()
        assert ("ggml_backend_amx_mul_mat" in caplog.text) is warned
    assert len(loaded) == 2  # a warning, not a refusal: the model is still loaded
