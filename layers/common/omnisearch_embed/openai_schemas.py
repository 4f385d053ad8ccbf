"""OpenAI's embeddings API shapes (``POST /v1/embeddings``, ``GET /v1/models``).

Requests are lenient where OpenAI is (unknown fields ignored: SDKs add new ones over time) and the
``input`` union admits token arrays only so the route can refuse them with a clear 400 instead of a
schema error nobody can read.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from omnisearch_embed.schemas import Vector, _absent

OWNED_BY = "omnisearch-embed"


class OpenAIEmbeddingRequest(BaseModel):
    """What the official SDKs send; ``modality`` is infinity's extension for images."""

    model_config = ConfigDict(extra="ignore")

    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A string or a list of strings. Token arrays are not supported (CLIP has its own tokenizer)."
    )
    model: str = Field(description="The served model id (see GET /v1/models) or its architecture name.")
    encoding_format: Literal["float", "base64", "int8", "ubinary"] = Field(
        "float",
        description="`base64` is little-endian float32, as OpenAI sends it; `int8` adds a `scale` to each item "
        "(v ≈ q × scale); `ubinary` is sign bits packed MSB-first, base64.",
    )
    dimensions: int | None = Field(
        None, description="Only the model's own dimension (with any encoding): CLIP cannot shorten vectors."
    )
    user: str | None = Field(None, description="Accepted and ignored.")
    modality: Literal["text", "image", "auto"] = Field(
        "text",
        description="`image`: each input is a data:image/...;base64 URI or an allowed s3:// URI; `auto`: inputs "
        "starting with data:image/ or s3:// are images, an http(s) URL is refused (`url_not_supported`) and so is "
        "bare base64 image data (`invalid_image_reference`), the rest are texts, answered in order.",
    )


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: Vector
    scale: float | None = Field(
        None, exclude_if=_absent, description="With `int8` only: the vector is about embedding × scale."
    )


class OpenAIUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    """Documents the shape (OpenAPI); bodies are rendered by :func:`omnisearch_embed.render.openai_embeddings_body`."""

    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = OWNED_BY


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]
