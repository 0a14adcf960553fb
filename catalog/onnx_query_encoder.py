"""The local model's query path on ONNX Runtime: one short text in ~4 ms instead of torch's ~11.

For a single short text torch spends most of its time dispatching ~100 small operators from
Python; ONNX Runtime runs the same graph as one call. The graph (transformer, mean pooling over
the attention mask, L2 normalisation) is exported from the loaded sentence-transformers model
once into ``EMBEDDING_CACHE_DIR`` and checked against torch on every load: a file that gives
other vectors is rebuilt, and if it still disagrees the caller keeps torch. Documents stay on
torch, which is as fast as ONNX Runtime for batches (docs/benchmarks/journal.md, "Search: why,
and what is left").
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from catalog.embeddings import query_model

logger = logging.getLogger(__name__)

ONNX_OPSET = 17
# Part of the file name: change it whenever query_model or _export changes what is exported.
EXPORT_RECIPE = 1
# Texts the exported graph must embed as torch does: short, with punctuation, and past the
# model's 256 tokens (truncation).
CHECK_TEXTS = (
    "heather honey",
    "Something smoky for a cheese board, not too sweet?",
    "Is raw honey safe for a baby under 12 months? " * 40,
)
MAX_DIFFERENCE = 1e-5


def _export(transformer: Any, path: Path) -> None:
    import torch

    features = transformer.tokenizer(
        ["a short text", "and a somewhat longer one than that"],
        return_tensors="pt",
        padding=True,
    )
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            query_model(transformer),
            (features["input_ids"], features["attention_mask"]),
            str(partial),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    try:
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


class OnnxQueryEncoder:
    def __init__(self, transformer: Any, path: Path, max_tokens: int, *, threads: int = 1) -> None:
        """``threads``: ONNX Runtime's threads for one text (``EMBEDDING_QUERY_THREADS``). Past
        one, the others do not spin between operators: they leave the core to PostgreSQL, which
        the search needs right after the embedding."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = transformer.tokenizer
        self._max_tokens = max_tokens

    def encode(self, text: str) -> list[float]:
        features = self._tokenizer(
            [text], return_tensors="np", truncation=True, max_length=self._max_tokens
        )
        inputs = {
            "input_ids": features["input_ids"].astype("int64"),
            "attention_mask": features["attention_mask"].astype("int64"),
        }
        return self._session.run(None, inputs)[0][0].tolist()


def _file_name(model_name: str, model_dir: Path) -> str:
    """Names the weights and the tools that made the file, so an upgrade exports afresh."""
    weights = model_dir / "model.safetensors"
    fingerprint = hashlib.sha256(
        "|".join(
            [
                str(weights.stat().st_size) if weights.exists() else model_dir.name,
                metadata.version("torch"),
                metadata.version("transformers"),
                metadata.version("onnxruntime"),
                str(ONNX_OPSET),
                str(EXPORT_RECIPE),
            ]
        ).encode()
    ).hexdigest()[:16]
    return f"{model_name}-{fingerprint}.onnx"


def _agrees(encoder: OnnxQueryEncoder, reference: Any) -> bool:
    import numpy as np

    return all(
        np.abs(np.array(encoder.encode(text)) - np.array(reference(text))).max() < MAX_DIFFERENCE
        for text in CHECK_TEXTS
    )


def onnx_query_encoder_load(
    *,
    model: Any,
    model_name: str,
    model_dir: Path,
    cache_dir: Path,
    reference: Any,
    threads: int = 1,
) -> OnnxQueryEncoder | None:
    """The ONNX encoder for ``model`` (a SentenceTransformer) on ``threads`` threads, exported
    on first use.

    ``reference(text)`` is torch's vector for ``text``. Returns None, with a warning, where
    ONNX Runtime is missing or the graph cannot be made to agree with torch.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        logger.warning("embeddings.onnx_unavailable", extra={"reason": "onnxruntime missing"})
        return None
    path = cache_dir / _file_name(model_name, model_dir)
    try:
        return _load_or_export(model, path, reference, threads)
    except Exception:  # an unwritable cache folder, say: queries stay on torch
        logger.exception("embeddings.onnx_not_used", extra={"path": str(path)})
        return None


def _load_or_export(
    model: Any, path: Path, reference: Any, threads: int
) -> OnnxQueryEncoder | None:
    import fasteners

    path.parent.mkdir(parents=True, exist_ok=True)
    transformer = model[0]
    # Gunicorn and Celery workers start together: one exports, the others wait and load it.
    with fasteners.InterProcessLock(str(path.with_suffix(".lock"))):
        for attempt in ("cached", "exported"):
            try:
                if attempt == "exported" or not path.exists():
                    _export(transformer, path)
                encoder = OnnxQueryEncoder(transformer, path, model.max_seq_length, threads=threads)
                if _agrees(encoder, reference):
                    _remove_older_exports(path)
                    return encoder
            except Exception as error:  # no exporter, or a truncated or foreign file
                logger.warning(
                    "embeddings.onnx_failed",
                    extra={"path": str(path), "attempt": attempt, "error": str(error)},
                )
            path.unlink(missing_ok=True)
    logger.warning("embeddings.onnx_not_used", extra={"path": str(path)})
    return None


def _remove_older_exports(path: Path) -> None:
    """Exports for other weights or tool versions (~90 MB each) are not needed any more."""
    prefix = path.name.rsplit("-", 1)[0]
    for other in path.parent.glob(f"{prefix}-*.onnx"):
        if other != path:
            other.unlink(missing_ok=True)
