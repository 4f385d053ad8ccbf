"""``POST /classify``: zero-shot labels for images or texts, as JSON, a multipart upload or a raw image body.

Like ``/embed/image`` the route reads the event itself (a declared pydantic body would refuse multipart and
``image/*``); JSON is still validated by :class:`ClassifyRequest`, and the other two forms are turned into
the same request. Multipart: ``file`` plus form fields ``labels`` (a JSON array string), ``template`` and
``top_k``. Raw image: ``?labels=red&labels=circle&template=...&top_k=3``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from omnisearch_embed.api.docs import responses
from omnisearch_embed.api.json_body import JSON_MEDIA_TYPES, event_json, event_media, json_loader
from omnisearch_embed.api.multipart import FILE_FIELD, body_bytes, parse_multipart
from omnisearch_embed.api.text import json_response
from omnisearch_embed.classify import DEFAULT_TEMPLATE, Classifier
from omnisearch_embed.errors import InvalidInputError, UnsupportedMediaTypeError
from omnisearch_embed.images import MEDIA_TYPES
from omnisearch_embed.render import classify_body
from omnisearch_embed.schemas import ClassifyRequest, ClassifyResponse
from omnisearch_embed.service import EmbedService, Prepared

_DESCRIPTION = (
    "Zero-shot classification: each input is scored against your `labels` (2 to 1,000), each turned into a "
    "prompt by `template`; probabilities are softmax over the model's own logit scale. JSON takes exactly one "
    "of `image`, `images`, `text` or `texts`. An upload takes multipart `file` with form fields `labels` (a "
    "JSON array string), `template`, `top_k`; a raw `image/*` body takes them in the query string, `labels` "
    "repeated. Label vectors are cached, so a repeated label set costs one forward pass of the inputs."
)
_FORM_FIELDS: dict[str, Any] = {
    "labels": {"type": "string", "description": 'A JSON array of labels, e.g. ["circle", "square"]'},
    "template": {"type": "string", "default": DEFAULT_TEMPLATE},
    "top_k": {"type": "integer", "minimum": 1},
}
_DECLARED_TYPES = sorted(set(MEDIA_TYPES) - {"image/jpg"})
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": ClassifyRequest.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {FILE_FIELD: {"type": "string", "format": "binary"}, **_FORM_FIELDS},
                "required": [FILE_FIELD, "labels"],
            }
        },
        **{media: {"schema": {"type": "string", "format": "binary"}} for media in _DECLARED_TYPES},
    },
}
QUERY_PARAMETERS = [
    {"name": "labels", "in": "query", "required": False, "schema": {"type": "array", "items": {"type": "string"}},
     "style": "form", "explode": True, "description": "For raw image bodies: one per label"},
    {"name": "template", "in": "query", "required": False, "schema": _FORM_FIELDS["template"]},
    {"name": "top_k", "in": "query", "required": False, "schema": _FORM_FIELDS["top_k"]},
]  # fmt: skip
_OPTIONS = frozenset({"labels", "template", "top_k"})


def _form_options(values: Mapping[str, str], labels: list[str]) -> dict[str, Any]:
    """``template`` and ``top_k`` from a form or query string, checked as JSON's would be."""
    unknown = sorted(set(values) - _OPTIONS)
    if unknown:
        raise InvalidInputError(f"unknown option(s): {', '.join(unknown)}", code="invalid_option", param=unknown[0])
    options: dict[str, Any] = {"labels": labels}
    if "template" in values:
        options["template"] = values["template"]
    if "top_k" in values:
        try:
            options["top_k"] = int(values["top_k"])
        except ValueError:
            raise InvalidInputError("top_k must be a whole number", code="invalid_option", param="top_k") from None
    return options


def _form_labels(raw: str | None) -> list[str]:
    if raw is None:
        raise InvalidInputError(
            'send the labels in a form field named \'labels\' as a JSON array, e.g. ["circle", "square"]',
            code="too_few_labels",
            param="labels",
        )
    try:
        labels = json.loads(raw)
    except ValueError:
        labels = None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise InvalidInputError(
            'the labels field must be a JSON array of strings, e.g. ["circle", "square"]',
            code="invalid_option",
            param="labels",
        )
    return labels


def register_classify_routes(app: APIGatewayRestResolver, service: EmbedService, classifier: Classifier) -> None:
    limit = service.settings.max_request_bytes
    load_json = json_loader(limit)

    def answer(prepare: Callable[[], Prepared], options: dict[str, Any]) -> Any:
        """``prepare`` checks the inputs as the embed routes do: every refusal comes before any label is embedded."""
        labels, template = options["labels"], options.get("template", DEFAULT_TEMPLATE)
        result = classifier.classify(prepare, labels, template=template, top_k=options.get("top_k"))
        return json_response(classify_body(result))

    @app.post(
        "/classify",
        summary="Zero-shot labels for images or texts",
        description=_DESCRIPTION,
        tags=["classify"],
        responses=responses(ClassifyResponse, "One ranked label list per input, in input order"),
        openapi_extensions={"requestBody": REQUEST_BODY, "parameters": QUERY_PARAMETERS},
    )
    def classify():
        event = app.current_event
        kind, content_type = event_media(event)
        if kind in JSON_MEDIA_TYPES:
            request = ClassifyRequest.model_validate(event_json(event, load_json))
            options = {"labels": request.labels, "template": request.template, "top_k": request.top_k}
            if request.image is not None or request.images is not None:
                refs = [request.image] if request.image is not None else request.images or []
                param = "image" if request.image is not None else "images"
                return answer(lambda: service.prepare_image_refs(refs, param=param), options)
            texts = [request.text] if request.text is not None else request.texts or []
            param = "text" if request.text is not None else "texts"
            return answer(lambda: service.prepare_texts(texts, param=param), options)
        if kind == "multipart/form-data":
            fields = parse_multipart(body_bytes(event, max_bytes=limit), content_type)
            upload = fields.pop(FILE_FIELD, None)
            if upload is None:
                raise InvalidInputError(
                    f"send the image in a form field named '{FILE_FIELD}'", code="missing_file", param=FILE_FIELD
                )
            values = {name: part.text() for name, part in fields.items()}
            options = _form_options(values, _form_labels(values.pop("labels", None)))
            data = upload.data
        elif kind in MEDIA_TYPES:
            query = dict(event.query_string_parameters or {})
            query.pop("labels", None)
            labels = list((event.multi_value_query_string_parameters or {}).get("labels") or [])
            options = _form_options(query, labels)
            data = body_bytes(event, max_bytes=limit)
        else:
            raise UnsupportedMediaTypeError(
                f"Content-Type {kind[:100]} is not accepted here; send JSON, multipart/form-data or image/*",
                code="unsupported_media_type",
            )
        return answer(lambda: service.prepare_image_bytes([data], param=FILE_FIELD), options)
