"""What the tests and the benchmarks both drive the code with, so bench/ never reaches into tests/.

- ``events``: API Gateway REST proxy events (``events/*.json``, a builder, multipart bodies, a sample PNG).
- ``images``: image bytes in every format, animated files, lying headers, truncations.
- ``golden_texts``: texts where tokenizers part ways, and seeded random mixtures of them.
- ``sagemaker_stubs``: real boto3 sagemaker-runtime clients, Stubber responses, and a container stub server
  that answers InvokeEndpoint over HTTP on 127.0.0.1.
- ``lambda_function``: a Lambda handler module loaded as the runtime loads it (``app`` from its folder).
- ``toolkit_harness``: the real SageMaker PyTorch serving stack, started and stopped by process group.

Importing any of these changes nothing: no environment variables, no ``sys.path``. This package imports the
project's own packages and third-party libraries, never ``tests``.
"""
