"""OmniSearch Embed's SageMaker serving container: ``/ping`` and ``/invocations`` over model.tar.gz's inference.py.

Bring-your-own-container contract: started as ``serve``, port 8080 (or ``SAGEMAKER_BIND_TO_PORT``), the
model from ``/opt/ml/model``. Concurrent invocations meet in one ``predict_fn`` call (``batching``), each
answered in its own format. Modules: ``batching`` (the repository's one DynamicBatcher), ``model``
(loading inference.py, the batch call), ``app`` (routes, errors, lifecycle), ``cli`` (flags, uvicorn).
Imports model_code only (to find the bundled inference.py); it ships alone in the container image.
"""
