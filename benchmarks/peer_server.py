"""The server users build by hand: FastAPI + a transformers pipeline, PyTorch fp32, one process.

  python benchmarks/peer_server.py MODEL_FOLDER TASK PORT [THREADS]

POST /predict {"inputs": ..., "parameters": {...}} -> the pipeline's result, as albert-onnx serve
(multiple choice, which has no pipeline: AlbertForMultipleChoice and a softmax over the choices).
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    import torch
    import transformers
    import uvicorn
    from fastapi import Body, FastAPI

    folder, task, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    transformers.logging.set_verbosity_error()
    tokenizer = transformers.AlbertTokenizerFast.from_pretrained(folder)
    app = FastAPI()
    run: Any
    if task == "multiple-choice":  # transformers has no pipeline for it: the model and a softmax, as users write
        model = transformers.AlbertForMultipleChoice.from_pretrained(folder).eval()

        def run(inputs: Any, **_: Any) -> Any:  # noqa: F811
            question, choices = inputs["question"], inputs["choices"]
            enc = tokenizer([question] * len(choices), choices, padding=True, truncation=True, return_tensors="pt")
            with torch.no_grad():
                scores = model(**{k: v.unsqueeze(0) for k, v in enc.items()}).logits[0].softmax(-1).tolist()
            return sorted(({"choice": c, "index": i, "score": s} for i, (c, s) in enumerate(zip(choices, scores))),
                          key=lambda r: -r["score"])
    else:
        model_class = {"text-classification": transformers.AlbertForSequenceClassification,
                       "token-classification": transformers.AlbertForTokenClassification,
                       "question-answering": transformers.AlbertForQuestionAnswering,
                       "fill-mask": transformers.AlbertForMaskedLM}[task]
        # task is a str variable here; the overloads of pipeline() want a literal
        run = transformers.pipeline(task, model=model_class.from_pretrained(folder), tokenizer=tokenizer,  # type: ignore[call-overload]
                                    device="cpu")

    @app.post("/predict")
    def predict(body: dict[str, Any] = Body(...)) -> Any:  # a sync handler: FastAPI runs it in its thread pool
        return _plain(run(body["inputs"], **(body.get("parameters") or {})))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _plain(value: Any) -> Any:
    """JSON values (the token-classification pipeline answers NumPy scalars)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


if __name__ == "__main__":
    main()
