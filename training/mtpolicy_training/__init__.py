"""Offline training for mtpolicy: multi-task envs, methods, ONNX export.

Depends on torch, gymnasium and metaworld; the deployment runtime
``mtpolicy`` never imports this package.
"""
