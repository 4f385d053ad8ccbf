"""ModelFunction: the model container's wire over Lambda Invoke, served by model_code/code/inference.py itself.

The event carries what InvokeEndpoint would: ``contentType``, ``accept`` (default ``application/json``) and
the request as one of ``json`` (a JSON request document as itself: what the core sends, sized to the byte)
or ``body`` (text, or base64 with ``"isBase64Encoded": true``: a raw image, ``text/plain``, JSON lines).
The bytes go through inference.py's ``input_fn -> predict_fn -> output_fn``, so the vectors are the
endpoint's. Answers:

- ``{"contentType", "body", "isBase64Encoded"}``: output_fn's bytes (JSON as text, anything else base64);
- ``{"error": {"code", "message", "status"}}`` for the caller's bad input, with the model code's own code
  and status (``STATUS_BY_CODE``), or ``invalid_event`` (400) for an event this function cannot read;
- a model failure raises: Lambda answers ``FunctionError: Unhandled`` and counts it in ``Errors``, so the
  caller tells bad input (a 4xx in the answer) from a broken model (a function error) without parsing text.

The model loads at import, in Lambda's init phase: init runs with a full CPU burst whatever the memory size,
its 10 s are separate from the invoke's timeout, and a bad archive or a model other than EXPECTED_MODEL_ID
fails there with a ConfigError naming both, before any request is answered. MODEL_DIR (default
``/opt/ml/model``) holds the archive's model files; the model code is the image's ``model_code/code``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from model_code.code import inference

MODEL_DIR = "/opt/ml/model"
ONNX_META = "clip_onnx.json"  # package_model.py's exported towers: the only model this image can serve
INVALID_EVENT = "invalid_event"
_TEXT_TYPES = ("application/json", "application/jsonlines", "application/x-jsonlines")

logger = logging.getLogger("omnisearch_embed.model_function")


class EventError(ValueError):
    """An event this function cannot read (no content type, no request, bad base64)."""


class ModelServer:
    """One loaded model and the wire around it; built once per execution environment."""

    def __init__(self, model_dir: str | Path, expected_model_id: str = "") -> None:
        root = Path(model_dir)
        if not (root / ONNX_META).is_file():
            raise inference.ConfigError(
                f"MODEL_DIR={str(root)!r} holds no exported model ({ONNX_META}): build the image with the files of "
                "an archive from package_model.py (text.onnx, image.onnx, tokenizer.json, clip_onnx.json)"
            )
        self.model = inference.model_fn(str(root))
        self.model_id = str(self.model.model_id)
        if expected_model_id and expected_model_id != self.model_id:
            raise inference.ConfigError(
                f"this function's archive holds model {self.model_id!r} but EXPECTED_MODEL_ID is "
                f"{expected_model_id!r} (the endpoint's model): vectors from two models must never meet in one index"
            )
        logger.info("serving %s from %s", self.model_id, root)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModelServer:
        env = os.environ if environ is None else environ
        return cls(env.get("MODEL_DIR", "").strip() or MODEL_DIR, env.get("EXPECTED_MODEL_ID", "").strip())

    def handle(self, event: Any) -> dict[str, Any]:
        """One invoke: the event's request through the model code; bad input answered, model failures raised."""
        try:
            body, content_type, accept = read_event(event)
        except EventError as e:
            return error_answer(INVALID_EVENT, str(e), 400)
        try:
            data = inference.input_fn(body, content_type)
            output, output_type = inference.output_fn(inference.predict_fn(data, self.model), accept)
        except inference.InputError as e:
            return error_answer(e.code, str(e), inference.STATUS_BY_CODE.get(e.code, 400))
        return body_answer(output, output_type)


def read_event(event: Any) -> tuple[Any, str, str]:
    """(the request for input_fn: a parsed JSON document, text or bytes; content type; accept) from the event.

    EventError names what is wrong with an event this function cannot read.
    """
    if not isinstance(event, dict):
        raise EventError(f"the event must be a JSON object, not {type(event).__name__}")
    content_type, accept = event.get("contentType"), event.get("accept") or inference.JSON_TYPE
    if not isinstance(content_type, str) or not content_type.strip():
        raise EventError("the event has no contentType")
    if not isinstance(accept, str):
        raise EventError("accept must be a string")
    if ("json" in event) == ("body" in event):
        raise EventError('the event needs exactly one of "json" (a JSON document) and "body" (text or base64)')
    if "json" in event:  # input_fn takes the parsed document as TorchServe hands it over: no second parse
        if media_type(content_type) != inference.JSON_TYPE:
            raise EventError(f'"json" carries an application/json request, not {content_type!r}: send "body"')
        return event["json"], content_type, accept
    body = event["body"]
    if not isinstance(body, str):
        raise EventError("body must be a string (base64 with isBase64Encoded: true)")
    if not event.get("isBase64Encoded"):
        return body, content_type, accept
    try:
        return base64.b64decode(body, validate=True), content_type, accept
    except (binascii.Error, ValueError) as e:
        raise EventError(f"body is flagged isBase64Encoded but is not base64: {e}") from None


def body_answer(output: bytes, content_type: str) -> dict[str, Any]:
    """output_fn's bytes: text for JSON types (no base64 growth against the 6 MB answer limit), else base64."""
    if media_type(content_type) in _TEXT_TYPES:
        return {"contentType": content_type, "body": output.decode("utf-8"), "isBase64Encoded": False}
    return {"contentType": content_type, "body": base64.b64encode(output).decode("ascii"), "isBase64Encoded": True}


def media_type(value: str) -> str:
    return value.split(";")[0].strip().lower()


def error_answer(code: str, message: str, status: int) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


server = ModelServer.from_env()  # Lambda's init phase (see the module docstring)


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    """The Lambda entry point (``app.lambda_handler``)."""
    return server.handle(event)
