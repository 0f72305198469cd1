"""Serving runtime: backends (torch, onnxruntime), the few-step sampler, per-avatar precompute and
the batching engine that serves many sessions at once."""
