"""Backends: SageMakerBackend (the cloud path) and FallbackBackend; LocalClipBackend lives in local_server."""
