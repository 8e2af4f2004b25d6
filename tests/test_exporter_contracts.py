"""The built-in ONNX exporter passes the contract a third-party exporter would (etk_core.testing.ExporterContract)."""

from __future__ import annotations

import pytest

from etk_core.testing import ExporterContract, needs_packaged_minilm

pytestmark = needs_packaged_minilm()


class TestOnnxExporter(ExporterContract):
    component_name = "onnx"
    backend = "onnx"
    export_files = ("model.onnx", "onnx.json")

    def break_check(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No graph is within a negative tolerance of PyTorch."""
        from etk_core.export import onnx_export

        monkeypatch.setattr(onnx_export, "FP32_TOLERANCE", -1.0)


class TestOnnxExporterInt8(TestOnnxExporter):
    """With `quantize: int8` the int8 graph is written too and runs as backend onnx-int8."""

    backend = "onnx-int8"
    export_options = {"quantize": "int8"}
    export_files = ("model.onnx", "model.int8.onnx", "onnx.json")
    tolerance = 0.05
