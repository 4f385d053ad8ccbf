"""The local server: the Lambda handlers behind real HTTP, a local CLIP backend and SageMaker runtime emulation.

Run it with ``python -m local_server`` (or ``make serve``). Modules: ``cli`` (flags, backend choice, banner),
``server`` (Starlette app, one Powertools app per worker thread), ``apigw_event`` (HTTP <-> API Gateway
REST proxy event), ``sagemaker_emulation`` (InvokeEndpoint in front of endpoint_server's container, mounted),
``batched_backend`` (endpoint_server's DynamicBatcher as a Backend), ``clip_backend`` (LocalClipBackend),
``weaviate`` (Weaviate's multi2vec-clip inference API) and ``background`` (a server on a background thread,
for tests). Importing the package imports none of them, so torch loads only when used.
"""
