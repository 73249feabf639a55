"""The contenders of benchmarks/run.py, each answering the same question the same way:
the top-5 candidates at the one [MASK] of a text (end to end) or of prepared ids (model only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

K = 5


def recipe_ids(tokenizer: Any, text: str) -> list[int]:
    """The model card's recipe: fast tokenizer, delete the token after the mask."""
    tokens = tokenizer.tokenize(text)
    del tokens[tokens.index(tokenizer.mask_token) + 1]
    return tokenizer.convert_tokens_to_ids([tokenizer.cls_token, *tokens, tokenizer.sep_token])


def pad(rows: list[list[int]]) -> dict[str, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def top_k_numpy(logits: np.ndarray) -> np.ndarray:
    idx = np.argpartition(-logits, K, axis=-1)[..., :K]
    order = np.take_along_axis(logits, idx, -1).argsort(-1)[..., ::-1]
    return np.take_along_axis(idx, order, -1)


class LogitsContender:
    """A model that returns full logits, fed by the model card's tokenizer recipe."""

    name = "?"

    def __init__(self, tokenizer: Any, mask_id: int) -> None:
        self.tokenizer = tokenizer
        self.mask_id = mask_id

    def logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def model_only(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.logits(feed)

    def end_to_end(self, text: str) -> list[int]:
        ids = recipe_ids(self.tokenizer, text)
        logits = self.logits(pad([ids]))
        return top_k_numpy(logits[0, ids.index(self.mask_id)]).tolist()

    def batch(self, texts: list[str]) -> list[list[int]]:
        rows = [recipe_ids(self.tokenizer, t) for t in texts]
        logits = self.logits(pad(rows))
        at = [r.index(self.mask_id) for r in rows]
        return top_k_numpy(logits[np.arange(len(rows)), at]).tolist()


class PyTorchRecipe(LogitsContender):
    name = "pytorch (model card recipe)"

    def __init__(self, folder: Path, tokenizer: Any, threads: int) -> None:
        import torch
        from transformers import AlbertForMaskedLM

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = AlbertForMaskedLM.from_pretrained(str(folder)).eval()
        super().__init__(tokenizer, tokenizer.mask_token_id)

    def logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.model(**{k: self.torch.from_numpy(v) for k, v in feed.items()})
        return out.logits.numpy()


class OptimumDefault(LogitsContender):
    name = "optimum ORTModelForMaskedLM (default export)"

    def __init__(self, folder: Path, tokenizer: Any, threads: int) -> None:
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForMaskedLM

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.model = ORTModelForMaskedLM.from_pretrained(str(folder), session_options=opts)
        session = getattr(self.model, "session", None) or getattr(self.model, "model", None)
        if session is None:
            raise RuntimeError(f"this optimum version's {type(self.model).__name__} exposes no ONNX Runtime session")
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        super().__init__(tokenizer, tokenizer.mask_token_id)

    def logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]

    def end_to_end(self, text: str) -> list[int]:
        import torch

        ids = recipe_ids(self.tokenizer, text)
        out = self.model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         token_type_ids=torch.zeros(1, len(ids), dtype=torch.long))
        return top_k_numpy(np.asarray(out.logits[0, ids.index(self.mask_id)])).tolist()


class OpenVINO(LogitsContender):
    def __init__(self, onnx_path: Path, tokenizer: Any, threads: int, precision: str | None) -> None:
        import openvino as ov

        core = ov.Core()
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads}
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        self.compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.actual_precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        self.request = self.compiled.create_infer_request()
        self.inputs = [p.get_any_name() for p in self.compiled.inputs]
        self.name = f"openvino ({'default' if precision is None else precision}: {self.actual_precision})"
        super().__init__(tokenizer, tokenizer.mask_token_id)

    def logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        out = self.request.infer({k: v for k, v in feed.items() if k in self.inputs})
        return next(iter(out.values()))


class OpenVINOInt8(OpenVINO):
    """OpenVINO's own int8: NNCF post-training quantization (static scales, the transformer
    preset) of the same ONNX file, calibrated on a few texts, compiled for the CPU."""

    def __init__(self, onnx_path: Path, cache: Path, tokenizer: Any, threads: int,
                 calibration: list[str]) -> None:
        import openvino as ov

        saved = cache / "openvino-nncf-int8.xml"
        if not saved.exists():
            import nncf

            feeds = [pad([recipe_ids(tokenizer, t)]) for t in calibration]
            quantized = nncf.quantize(ov.Core().read_model(str(onnx_path)), nncf.Dataset(feeds),
                                      model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds))
            ov.save_model(quantized, str(saved))
        super().__init__(saved, tokenizer, threads, None)
        self.name = "openvino int8 (NNCF)"


class AlbertOnnx:
    """This package's runtime: its own tokenizer (mask fix) and the masked top-k graph."""

    def __init__(self, artifact: Path, precision: str, threads: int, int8_weights: str = "auto") -> None:
        from albert_onnx import FillMask

        self.fm = FillMask(artifact, precision=precision, threads=threads, int8_weights=int8_weights)
        self.name = f"albert-onnx {precision}" + ("" if int8_weights == "auto" else f", {int8_weights} weights")
        self.k = np.array([K], dtype=np.int64)

    @staticmethod
    def kernel(form: str) -> str:
        from albert_onnx.engine.cpu import int8_kernel

        return int8_kernel(form)

    def model_only(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        from albert_onnx.engine.io import flat_positions

        positions = [np.flatnonzero(row == self.fm.tokenizer.mask_token_id) for row in feed["input_ids"]]
        return self.fm.session.run(["top_probs", "top_ids"],
                                   {**feed, "mask_positions": flat_positions(positions, feed["input_ids"].shape[1]),
                                    "top_k": self.k})[1]

    def end_to_end(self, text: str) -> list[int]:
        return self.fm.predict_ids([text], top_k=K)[0][1][0].tolist()

    def batch(self, texts: list[str]) -> list[list[int]]:
        return [ids[0].tolist() for _, ids in self.fm.predict_ids(texts, top_k=K)]
