"""What every route shares: the predictor, its task, the model thread and the limits, and
``run``, which checks a request's size and cost before it queues."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .http import HTTPError
from .worker import ModelWorker, QueueFull


@dataclass
class Limits:
    max_inputs: int
    max_request_tokens: int
    max_body_bytes: int
    max_queue: int
    max_batch_size: int
    max_wait_ms: float
    ready_deadline_s: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(eq=False)
class Served:
    predictor: Any
    task: str
    model_name: str
    worker: ModelWorker
    limits: Limits
    parameters: set[str] = field(default_factory=set)  # the keyword options the predictor takes

    @property
    def max_length(self) -> int:
        return int(self.predictor.max_length)

    async def run(self, inputs: Any, parameters: dict[str, Any], cost: int, fn: Any = None,
                  count: int | None = None) -> Any:
        """The model thread's answer to ``(fn or predictor)(inputs, **parameters)``, once the
        request is within the limits: inputs (413), tokens (413) and the queue (503)."""
        count = count if count is not None else len(inputs) if isinstance(inputs, list) else 1
        limits = self.limits
        if count > limits.max_inputs:
            raise HTTPError(413, f"{count} inputs in one request; this server takes at most {limits.max_inputs} "
                                 "(--max-inputs)", "payload")
        if count == 0:
            raise HTTPError(422, "the inputs are an empty list")
        if cost > limits.max_request_tokens:
            raise HTTPError(413, f"this request costs {cost} tokens (every text, pair, label, choice and window, "
                                 f"a token per character); this server takes at most {limits.max_request_tokens} "
                                 "per request (--max-request-tokens)", "payload")
        try:
            future = self.worker.submit(inputs, parameters, fn, cost)
        except QueueFull:
            raise HTTPError(503, f"the server is busy ({limits.max_queue} requests waiting); retry shortly",
                            "overloaded", {"Retry-After": "1"}) from None
        return await future


def predictor_parameters(predictor: Any) -> set[str]:
    """The keyword options the predictor's call takes (what ``parameters`` may hold)."""
    names = list(inspect.signature(predictor.__call__).parameters.items())
    return {n for n, p in names[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and n not in ("question", "context", "choices")}


def plain(value: Any) -> Any:
    """JSON values of a predictor's result (arrays to lists, NumPy scalars to numbers)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
