"""Run inside the Lambda runtime with the built layer at /opt: which boto3/botocore import, and whether the
request's deadline cuts a read that the client alone would hold for two minutes. Prints one JSON line."""

import json
import os
import socket
import time

hung = socket.socket()
hung.bind(("127.0.0.1", 0))
hung.listen()  # the kernel accepts the connection; nothing ever answers
os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = f"http://127.0.0.1:{hung.getsockname()[1]}"
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")

import boto3  # noqa: E402
import botocore  # noqa: E402

from omnisearch_embed import deadline  # noqa: E402
from omnisearch_embed.backends.sagemaker import SageMakerBackend  # noqa: E402
from omnisearch_embed.errors import BackendTimeoutError  # noqa: E402

backend = SageMakerBackend("hung", "tiny-shapes", region="us-east-1", timeout_seconds=120)
start = time.monotonic()
with deadline.scope(start + 3):
    try:
        backend.embed_texts(["a red circle"])
        outcome = "answered"
    except BackendTimeoutError as error:
        outcome = error.code
print(json.dumps({"boto3": boto3.__version__, "botocore": botocore.__version__, "botocore_file": botocore.__file__,
                  "outcome": outcome, "seconds": time.monotonic() - start}))  # fmt: skip
