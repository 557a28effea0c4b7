"""The API's requests and answers as OpenAPI sees them, so /docs can upload a file and shows the real bodies.

The handlers read their bodies themselves (a capped stream, multipart or JSON), so the request bodies are
declared here rather than inferred; answers are the dicts that Prediction.to_dict and Reading.to_dict build.
"""
from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, Field

from ..constants import IMAGE_SIZE, NUM_CLASSES


class Pixels(BaseModel):
    pixels: list[list[float]] = Field(description=f"{IMAGE_SIZE}x{IMAGE_SIZE} grey levels 0-255, or 0-1 floats "
                                                  "(any polarity)")


class PredictionOut(BaseModel):
    file: Optional[str] = Field(None, description="the upload's name (absent for a pixel array)")
    digit: Optional[int] = Field(description="the digit; null when the image had none to read (blank, noise, "
                                             "several digits)")
    confidence: float = Field(description="calibrated probability of `digit`")
    probabilities: list[float] = Field(description=f"{NUM_CLASSES} calibrated probabilities, digits 0-9 (empty "
                                                   "when the model was not asked)")
    refused: bool = Field(description="no answer given: blank, several digits, not a digit, or ambiguous")
    reason: Optional[str] = Field(None, description="why it was refused")
    score: Optional[float] = Field(None, description="the digit score: high for digits, low for marks unlike any "
                                                     "digit the model learned (absent when not measured)")
    image: Optional[list[list[int]]] = Field(None, description="with ?image=true: the 28x28 input the model saw")


class DigitOut(BaseModel):
    digit: int
    confidence: float
    box: list[int] = Field(description="x, y, width, height in the image's pixels")
    refused: bool
    reason: Optional[str] = Field(None, description="why this digit was refused, shown as '?' (absent when read)")


class ReadingOut(BaseModel):
    file: Optional[str] = None
    number: str = Field(description="the digits left to right; a refused digit is '?'")
    digits: list[DigitOut]
    refused: bool = Field(description="nothing read: a blank, or no mark read as a digit")
    reason: Optional[str] = Field(None, description="why it was refused")


class ErrorOut(BaseModel):
    error: str = Field(description="one line naming the problem")


class HealthOut(BaseModel):
    status: str
    worker: int = Field(description="process id of the worker that answered")


class ModelOut(BaseModel):
    name: str
    sha256: str
    architecture: dict[str, Any]
    parameters: int
    metrics: dict[str, Any]
    members: int
    marker_reader: bool = Field(description="whether a second network reads fat markers' digits")
    version: str


ERRORS = {code: {"model": ErrorOut, "description": what} for code, what in {
    400: "empty or malformed body", 403: "another site's page (see --allow-origin)",
    408: "body not sent in time", 413: "too large (bytes, pixels or JSON)", 415: "not an image",
    404: "no such page", 405: "method not allowed",
    422: "wrong pixel array or bad parameter", 503: "a worker process could not start (health)"}.items()}


def upload_body(with_pixels: bool) -> dict[str, Any]:
    """openapi_extra for a route that takes multipart 'file' (repeatable) and, for predict, JSON pixels."""
    content: dict[str, Any] = {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"},
                                "description": "one or more images (PNG, JPEG, BMP, TIFF, GIF, WebP)"}}}}}
    if with_pixels:
        content["application/json"] = {"schema": Pixels.model_json_schema()}
    return {"requestBody": {"required": True, "content": content}}


def one_or_many(model: type[BaseModel]) -> dict[str, Any]:
    return {"model": Union[model, list[model]], "description": "one object per image; a list for several"}
