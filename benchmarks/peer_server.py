"""The server users build by hand: FastAPI + a transformers pipeline, PyTorch fp32, one process.

  python benchmarks/peer_server.py MODEL_FOLDER TASK PORT [THREADS]

POST /predict {"inputs": ..., "parameters": {...}} -> the pipeline's result, as albert-onnx serve.
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
    model_class = {"text-classification": transformers.AlbertForSequenceClassification,
                   "fill-mask": transformers.AlbertForMaskedLM}[task]
    pipe = transformers.pipeline(task, model=model_class.from_pretrained(folder),
                                 tokenizer=transformers.AlbertTokenizerFast.from_pretrained(folder), device="cpu")
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any] = Body(...)) -> Any:  # a sync handler: FastAPI runs it in its thread pool
        return pipe(body["inputs"], **(body.get("parameters") or {}))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
