"""Export of model artifacts to serving formats (ONNX is the built-in exporter)."""
