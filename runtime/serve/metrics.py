"""Prometheus metrics of the server, in the text exposition format (no client library)."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Sequence
from itertools import accumulate

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last: above every edge
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1  # the bucket's own count; render adds them up
        self.total += 1
        self.sum += value

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{edge:g}"}} {count}'
               for edge, count in zip(self.buckets, accumulate(self.counts))]
        out += [f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}',
                f"{name}_sum{{{labels}}} {self.sum:.6f}" if labels else f"{name}_sum {self.sum:.6f}",
                f"{name}_count{{{labels}}} {self.total}" if labels else f"{name}_count {self.total}"]
        return out


class Metrics:
    """Requests by route and status, latency per route, model time and batch size per run, inputs,
    tokens and the queue depth."""

    def __init__(self, queue_depth: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = defaultdict(int)
        self._latency: dict[str, Histogram] = {}
        self._batches = Histogram(BATCH_BUCKETS)
        self._model = Histogram(LATENCY_BUCKETS_S)
        self._inputs = 0
        self._tokens = 0
        self._queue_depth = queue_depth

    def request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(route, status)] += 1
            self._latency.setdefault(route, Histogram(LATENCY_BUCKETS_S)).observe(seconds)

    def batch(self, inputs: int, tokens: int, seconds: float) -> None:
        with self._lock:
            self._batches.observe(inputs)
            self._model.observe(seconds)
            self._inputs += inputs
            self._tokens += tokens

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP albert_onnx_requests_total HTTP requests by route and status.",
                     "# TYPE albert_onnx_requests_total counter"]
            lines += [f'albert_onnx_requests_total{{route="{r}",status="{s}"}} {n}'
                      for (r, s), n in sorted(self._requests.items())]
            lines += ["# HELP albert_onnx_request_seconds Request latency by route.",
                      "# TYPE albert_onnx_request_seconds histogram"]
            for route, hist in sorted(self._latency.items()):
                lines += hist.lines("albert_onnx_request_seconds", f'route="{route}"')
            lines += ["# HELP albert_onnx_model_seconds Time of each model run (the predictor's call: tokens, "
                      "ONNX Runtime and the answers), the part of a request's latency the server does not add.",
                      "# TYPE albert_onnx_model_seconds histogram", *self._model.lines("albert_onnx_model_seconds"),
                      "# HELP albert_onnx_batch_inputs Inputs per model run (requests merged where allowed).",
                      "# TYPE albert_onnx_batch_inputs histogram", *self._batches.lines("albert_onnx_batch_inputs"),
                      "# HELP albert_onnx_inputs_total Inputs (texts, questions) run.",
                      "# TYPE albert_onnx_inputs_total counter", f"albert_onnx_inputs_total {self._inputs}",
                      "# HELP albert_onnx_tokens_total Tokens the model ran: every position of every sequence, "
                      "[CLS] and [SEP] included, padding not.",
                      "# TYPE albert_onnx_tokens_total counter", f"albert_onnx_tokens_total {self._tokens}",
                      "# HELP albert_onnx_queue_depth Requests waiting for the model.",
                      "# TYPE albert_onnx_queue_depth gauge", f"albert_onnx_queue_depth {self._queue_depth()}"]
        return "\n".join(lines) + "\n"
