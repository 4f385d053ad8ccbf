"""Pydantic request and response models of the public API: the shapes clients rely on.

Requests are strict (no ``"true"`` -> ``True`` coercion) and forbid unknown fields, so a typo such as
``"normalise"`` is a 422 naming the field instead of a silently ignored option. The response models
document the shapes in OpenAPI; :mod:`omnisearch_embed.render` writes the bodies (fast), and the tests
check every rendered body against these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Encoding = Literal["float", "base64", "int8", "ubinary"]
ENCODINGS: tuple[str, ...] = ("float", "base64", "int8", "ubinary")
Vector = list[float] | list[int] | str
DEFAULT_TEMPLATE = "a photo of {}"  # /classify's prompt; the page reads it from /page/config
_ENCODING_HELP = (
    "`float` lists; `base64` of little-endian float32; `int8` values with a per-vector `scale` "
    "(v ≈ q × scale); `ubinary` sign bits packed MSB-first, base64."
)

_REQUEST = ConfigDict(extra="forbid", strict=True)


def _absent(value: object) -> bool:
    """Optional response fields (``scale``) are left out of a body, not written as null."""
    return value is None


class _Options(BaseModel):
    model_config = _REQUEST

    normalize: bool = Field(True, description="L2-normalise the vector (cosine similarity becomes a dot product).")
    encoding: Encoding = Field("float", description=_ENCODING_HELP)


class TextEmbedRequest(_Options):
    """``POST /embed/text``."""

    text: str = Field(description="Text to embed. CLIP reads 77 tokens; longer text is truncated and flagged.")


class BatchTextRequest(_Options):
    """``POST /embed/batch/text``."""

    texts: list[str] = Field(description="Texts to embed, in order.")


class ImageEmbedRequest(_Options):
    """``POST /embed/image`` as JSON: exactly one of ``image`` or ``s3_uri``."""

    image: str | None = Field(None, description="Base64 image, a data URI, or an s3://bucket/key URI.")
    s3_uri: str | None = Field(None, description="s3://bucket/key of an image in an allowed bucket.")

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ImageEmbedRequest:
        if (self.image is None) == (self.s3_uri is None):
            raise ValueError("give exactly one of 'image' or 's3_uri'")
        return self

    @property
    def ref(self) -> str:
        return self.image if self.image is not None else str(self.s3_uri)


class BatchImageRequest(_Options):
    """``POST /embed/batch/image``."""

    images: list[str] = Field(description="Base64 images, data URIs or s3:// URIs, in order.")


class BatchItem(BaseModel):
    """One item of ``POST /embed/batch``: exactly one of ``text`` or ``image``."""

    model_config = _REQUEST

    text: str | None = Field(None, description="A text to embed.")
    image: str | None = Field(None, description="Base64 image, a data URI, or an s3://bucket/key URI.")

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> BatchItem:
        if (self.text is None) == (self.image is None):
            raise ValueError("give exactly one of 'text' or 'image'")
        return self


class MixedBatchRequest(_Options):
    """``POST /embed/batch``: texts and images in one list, answered in order."""

    items: list[BatchItem] = Field(description='`{"text": ...}` or `{"image": ...}` items, in order.')


class _EmbedMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dimension: int = Field(description="Length of each vector.")
    model: str = Field(description="Model id, e.g. ViT-B-32/openai: never mix vectors of two ids in one index.")
    service: str = Field(description="Who answered: sagemaker, lambda-model (the model function) or local.")


class ImageEmbedResponse(_EmbedMeta):
    """``POST /embed/image``."""

    embedding: Vector
    scale: float | None = Field(
        None, exclude_if=_absent, description="With `int8` only: the vector is about embedding × scale."
    )


class TextEmbedResponse(ImageEmbedResponse):
    """``POST /embed/text``: ``truncated`` is true when the text ran past CLIP's 77 tokens."""

    truncated: bool


class BatchImageResponse(_EmbedMeta):
    """``POST /embed/batch/image``: vectors in input order."""

    embeddings: list[Vector]
    count: int
    scales: list[float] | None = Field(
        None, exclude_if=_absent, description="With `int8` only: one scale per vector, in order."
    )


class BatchTextResponse(BatchImageResponse):
    """``POST /embed/batch/text``: vectors and truncation flags in input order."""

    truncated: list[bool]


class HealthResponse(BaseModel):
    """``GET /health``: ``down`` comes with HTTP 503 so load balancers and canaries see it."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded", "down"]
    service: str
    model: str
    backend: dict[str, Any] = Field(default_factory=dict)
    deep: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every error: ``{"error": {"code", "message"}}`` (OpenAI's shape under ``/v1/``)."""

    error: ErrorBody


class ClassifyRequest(BaseModel):
    """``POST /classify`` as JSON: exactly one of ``image``, ``images``, ``text`` or ``texts``, plus ``labels``."""

    model_config = _REQUEST

    image: str | None = Field(None, description="Base64 image, a data URI, or an s3://bucket/key URI.")
    images: list[str] | None = Field(None, description="Images as `image` takes them, in order.")
    text: str | None = Field(None, description="A text to route among the labels.")
    texts: list[str] | None = Field(None, description="Texts, in order.")
    labels: list[str] = Field(description="2 to 1,000 candidate labels, each used once.")
    template: str = Field(DEFAULT_TEMPLATE, description="Prompt for each label; `{}` marks where the label goes.")
    top_k: int | None = Field(None, description="Return only the k most probable labels (default: all).")

    @model_validator(mode="after")
    def _exactly_one_input(self) -> ClassifyRequest:
        given = [name for name in ("image", "images", "text", "texts") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'image', 'images', 'text' or 'texts'")
        return self


class LabelProbability(BaseModel):
    label: str
    probability: float = Field(description="softmax(logit_scale x similarity) over all the labels.")
    similarity: float = Field(description="Cosine similarity of the input and the label's prompt.")


class ClassifyResult(BaseModel):
    labels: list[LabelProbability] = Field(description="Most probable first, cut to top_k.")


class ClassifyResponse(BaseModel):
    """``POST /classify``: one result per input, in input order."""

    model: str
    service: str
    template: str
    logit_scale: float = Field(description="The model's own logit scale (exp of its learnt temperature).")
    results: list[ClassifyResult]
    truncated_labels: list[str] = Field(description="Labels whose prompt ran past CLIP's 77 tokens and was cut.")
