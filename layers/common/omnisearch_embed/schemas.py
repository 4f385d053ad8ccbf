"""Pydantic request and response models of the public API: the shapes clients rely on.

Requests are strict (no ``"true"`` -> ``True`` coercion) and forbid unknown fields, so a typo such as
``"normalise"`` is a 422 naming the field instead of a silently ignored option. The response models
document the shapes in OpenAPI; :mod:`omnisearch_embed.render` writes the bodies (fast), and the tests
check every rendered body against these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Encoding = Literal["float", "base64"]
Vector = list[float] | str

_REQUEST = ConfigDict(extra="forbid", strict=True)


class _Options(BaseModel):
    model_config = _REQUEST

    normalize: bool = Field(True, description="L2-normalise the vector (cosine similarity becomes a dot product).")
    encoding: Encoding = Field("float", description="`float` lists, or `base64` of little-endian float32.")


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


class _EmbedMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dimension: int = Field(description="Length of each vector.")
    model: str = Field(description="Model id, e.g. ViT-B-32/openai: never mix vectors of two ids in one index.")
    service: str = Field(description="Who answered: sagemaker, or local (a fallback may answer locally).")


class ImageEmbedResponse(_EmbedMeta):
    """``POST /embed/image``."""

    embedding: Vector


class TextEmbedResponse(ImageEmbedResponse):
    """``POST /embed/text``: ``truncated`` is true when the text ran past CLIP's 77 tokens."""

    truncated: bool


class BatchImageResponse(_EmbedMeta):
    """``POST /embed/batch/image``: vectors in input order."""

    embeddings: list[Vector]
    count: int


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
