"""Shipping trained reach policies: ONNX export with the metadata contract, the reach table, model cards."""
