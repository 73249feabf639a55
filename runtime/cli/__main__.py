"""``python -m albert_onnx.cli``: the same as the ``albert-onnx`` command."""

from . import main

raise SystemExit(main())
