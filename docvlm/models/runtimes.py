"""Faster local runtimes for text-only models, behind the same seam: onnxruntime-genai and llama.cpp.

Both decode one token at a time under docvlm's own mask (`docvlm.models._stepwise`: the same regex and
token index as the transformers backend), keep the KV cache of the last prompt for the next call that shares
its beginning, and score through a transformers twin. ``dv.load_model("default")`` picks the fastest one
installed (see [`docvlm.models.default.load_default`][docvlm.models.default.load_default]); load one by name with
``dv.load_model("default", runtime="onnxruntime")`` or ``runtime="llama.cpp"``.

- ``onnxruntime-genai`` (``pip install onnxruntime-genai onnx onnx-ir``): its model builder converts a local
  Hugging Face folder offline, once, to int4 / int8 / fp32 ONNX; the CPU kernels are the fastest measured for
  SmolLM2-135M decoding (docs/performance.md, "Speed on CPU").
- ``llama-cpp-python``: reads the GGUF file itself (PyPI has no Linux wheel: it compiles llama.cpp, so it is
  never part of the default install).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from docvlm._threads import check_threads, threads_for
from docvlm.errors import MissingDependencyError, ModelError
from docvlm.models._stepwise import StepModel

__all__ = ["LlamaCppModel", "OnnxGenAIModel", "export_onnx", "llama_cpp_available", "onnx_genai_available"]


def onnx_genai_available() -> bool:
    """Whether onnxruntime-genai (and its model builder's dependencies) can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime_genai", "onnx", "onnx_ir"))


def llama_cpp_available() -> bool:
    """Whether llama-cpp-python can be imported."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def export_onnx(source: str | Path, target: str | Path, precision: str = "int8") -> Path:
    """Export a local Hugging Face causal-LM folder with onnxruntime-genai's model builder (offline, in a
    subprocess: it imports torch and writes progress bars), atomically into ``target``.

    Raises:
        MissingDependencyError: onnxruntime-genai, onnx or onnx-ir is missing.
        ModelError: the builder failed (its last line is in the message).
    """
    if not onnx_genai_available():
        raise MissingDependencyError("onnxruntime-genai", "fast", purpose="exporting a model for onnxruntime-genai",
                                     hint="pip install onnxruntime-genai onnx onnx-ir")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-onnx-", dir=target.parent))
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(tmp / "model"),
           "-p", precision, "-e", "cpu", "-c", str(tmp / "cache")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=1800)
        if done.returncode != 0 or not (tmp / "model" / "genai_config.json").exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ModelError(f"onnxruntime-genai's model builder failed on {source}: {tail[0][:300]}",
                             hint="use runtime='transformers'")
        try:
            os.replace(tmp / "model", target)
        except OSError:
            if not (target / "genai_config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _hf_tokenizer(folder: str | Path) -> Any:
    from transformers import AutoTokenizer

    from docvlm.models.transformers import quiet_transformers

    with quiet_transformers():
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


class OnnxGenAIModel(StepModel):
    """A text-only model exported by onnxruntime-genai's model builder, run on its CPU kernels.

    Args:
        folder: the builder's output folder (``genai_config.json``, ``model.onnx``, tokenizer files).
        spec: how it was loaded.
        threads: intra-op threads, fixed when the session is created (default: docvlm's thread policy at load).
        scorer: a function that loads the transformers twin used by [`score`][docvlm.models.base.Model.score].
    """

    def __init__(self, folder: str | Path, *, spec: str = "", threads: int | None = None,
                 scorer: Callable[[], Any] | None = None) -> None:
        try:
            import importlib

            og: Any = importlib.import_module("onnxruntime_genai")  # untyped
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime-genai", "fast", purpose="the onnxruntime-genai runtime") from exc
        self.folder = Path(folder)
        self.threads = check_threads(threads)
        self._og = og
        self._n_threads = 0
        self._gen: Any = None
        self._load(threads_for(threads=self.threads))
        genai = json.loads((self.folder / "genai_config.json").read_text())["model"]
        self._context = int(genai.get("context_length") or 2048)
        eos = genai.get("eos_token_id")
        eos_ids = eos if isinstance(eos, list) else [eos]
        super().__init__(_hf_tokenizer(self.folder), spec=spec or f"onnxruntime:{self.folder}",
                         eos_token_ids=[int(e) for e in eos_ids if e is not None], scorer=scorer)

    def _load(self, n: int) -> None:
        """(Re)create the session with ``n`` intra-op threads (they are fixed per session)."""
        config = self._og.Config(str(self.folder))
        options: dict[str, Any] = {"intra_op_num_threads": n, "inter_op_num_threads": 1}
        if n > 1:  # threads that spin while waiting steal the cores a busy neighbour needs
            options["session.intra_op.allow_spinning"] = "0"  # genai reads dotted keys as session config entries
        config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        try:
            self._model = self._og.Model(config)
        except Exception as exc:  # onnxruntime raises its own types
            raise ModelError(f"onnxruntime-genai cannot load {self.folder}: {exc}") from exc
        self._n_threads = n
        self._gen, self._tokens, self._max_length = None, [], 0

    def _feed(self, keep: int, tokens: list[int]) -> np.ndarray:
        need = keep + len(tokens)
        if need > self._context:
            raise ModelError(f"the prompt and answer need {need} tokens; {self.spec} holds {self._context}",
                             hint="give fewer pages or a shorter text")
        if self._gen is None or need > self._max_length:
            held = self._tokens[:keep]
            self._max_length = min(self._context, max(2048, 2 * need))
            params = self._og.GeneratorParams(self._model)
            params.set_search_options(max_length=self._max_length, do_sample=False)
            self._gen = self._og.Generator(self._model, params)
            keep, tokens = 0, held + tokens
        elif keep < self._gen.token_count():
            self._gen.rewind_to(keep)
        try:
            self._gen.append_tokens([tokens])
            logits = np.asarray(self._gen.get_logits())
        except Exception as exc:
            self._gen, self._tokens = None, []
            raise ModelError(f"onnxruntime-genai failed in {self.spec}: {exc}") from exc
        last: np.ndarray = logits.reshape(-1, logits.shape[-1])[-1]
        return last

    def _complete(self, requests: Sequence[Any]) -> list[str]:
        if self.threads is None:
            n = threads_for()
            if n != self._n_threads:  # the machine got busier or quieter: a session with the threads free now
                with self._lock:
                    self._load(n)
        try:
            return super()._complete(requests)
        except BaseException:
            self._gen, self._tokens = None, []  # a half-fed sequence is not reused
            raise


class LlamaCppModel(StepModel):
    """A GGUF model run by llama.cpp through llama-cpp-python, tokenized by the Hugging Face tokenizer in
    ``tokenizer_folder`` (the same token ids: the transformers folder converted from the same GGUF).

    Args:
        gguf: the GGUF file.
        tokenizer_folder: a folder with the model's Hugging Face tokenizer.
        n_ctx: context length to allocate.
        threads: threads (default: docvlm's thread policy at load).
        scorer: a function that loads the transformers twin used by [`score`][docvlm.models.base.Model.score].
    """

    def __init__(self, gguf: str | Path, tokenizer_folder: str | Path, *, spec: str = "", n_ctx: int = 4096,
                 threads: int | None = None, scorer: Callable[[], Any] | None = None) -> None:
        try:
            import importlib

            Llama: Any = importlib.import_module("llama_cpp").Llama  # optional, absent from CI's install
        except ImportError as exc:
            raise MissingDependencyError(
                "llama-cpp-python", "llamacpp", purpose="the llama.cpp runtime",
                hint="pip install llama-cpp-python (it compiles llama.cpp: minutes)") from exc
        self.threads = check_threads(threads)
        n = threads_for(threads=self.threads)
        self._llm: Any
        try:
            self._llm = Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=n, n_threads_batch=n, n_batch=512,
                              logits_all=False, verbose=False)
        except Exception as exc:
            raise ModelError(f"llama.cpp cannot load {gguf}: {exc}") from exc
        self._n_ctx = n_ctx
        self._n_vocab = int(self._llm.n_vocab())
        tokenizer = _hf_tokenizer(tokenizer_folder)
        super().__init__(tokenizer, spec=spec or f"llama.cpp:{gguf}",
                         eos_token_ids=[int(self._llm.token_eos()), int(tokenizer.eos_token_id)], scorer=scorer)

    def _feed(self, keep: int, tokens: list[int]) -> np.ndarray:
        if keep + len(tokens) > self._n_ctx:
            raise ModelError(f"the prompt and answer need {keep + len(tokens)} tokens; {self.spec} holds {self._n_ctx}",
                             hint="give fewer pages or a shorter text")
        llm: Any = self._llm
        llm.n_tokens = keep  # eval() drops the KV cache past n_tokens first
        try:
            llm.eval(tokens)
        except Exception as exc:
            self._tokens = []
            llm.reset()
            raise ModelError(f"llama.cpp failed in {self.spec}: {exc}") from exc
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(self._n_vocab,)).copy()

    def _complete(self, requests: Sequence[Any]) -> list[str]:
        try:
            return super()._complete(requests)
        except BaseException:
            self._tokens = []
            self._llm.reset()
            raise
