"""Valid requests to start from (imported by the tests of this folder)."""

from __future__ import annotations

from typing import Any

from bot.api import Q2ReferenceToVideoRequest, Q3ImageToVideoRequest, Subject

IMAGE = "https://cdn.example.test/cat.png"
IMAGE2 = "https://cdn.example.test/dog.png"


def q3_request(**fields: Any) -> Q3ImageToVideoRequest:
    values: dict[str, Any] = {"images": [IMAGE], "prompt": "a cat walks", "duration": 5}
    values.update(fields)
    return Q3ImageToVideoRequest(**values)


def q2_request(**fields: Any) -> Q2ReferenceToVideoRequest:
    values: dict[str, Any] = {
        "prompt": "@1 chases @2 on a beach",
        "subjects": [Subject(id="1", images=[IMAGE]), Subject(id="2", images=[IMAGE2])],
    }
    values.update(fields)
    return Q2ReferenceToVideoRequest(**values)
