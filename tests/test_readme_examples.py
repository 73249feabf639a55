"""The documentation's own Ray and Spark examples (docs/bulk-jobs.md), run as written (on local clusters)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from albert_onnx import FillMask

DOC = Path(__file__).resolve().parents[1] / "docs" / "bulk-jobs.md"
TEXTS = ["吾輩は[MASK]である。", "大学で[MASK]の研究をしています", "マスクがない", "[MASK]は猫"]


def example(name: str) -> str:
    m = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert m, f"{DOC.name} has no {name} example"
    return m.group(1)


@pytest.mark.slow
@pytest.mark.parametrize("name, module", [("ray", "ray"), ("spark", "pyspark")])
def test_readme_example(name: str, module: str, tiny_artifact: Path) -> None:
    pytest.importorskip(module)
    if name == "ray":  # a local Ray on the loopback interface, with a CPU beside the two actors
        import ray

        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    scope: dict[str, Any] = {"ARTIFACT": str(tiny_artifact), "texts": TEXTS}
    try:
        exec(compile(example(name), f"README:{name}", "exec"), scope)  # noqa: S102
    finally:
        if name == "ray":
            import ray

            ray.shutdown()
        else:
            scope["spark"].stop()
    out = scope["out"].sort_values("id", key=lambda c: c.astype(int))
    fm = FillMask(tiny_artifact, precision="int8")
    for text, (_, row) in zip(TEXTS, out.iterrows()):
        if "[MASK]" in text:
            want = fm.fill([text])[0]
            assert [[c["token"] for c in m] for m in json.loads(row["result"])] == \
                [[c["token"] for c in m] for m in want]
        else:
            assert row["error"].startswith("text has no [MASK]")
