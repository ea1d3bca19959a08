"""The transforms a mapping field may apply, registered by name: importing this package fills ``TRANSFORMS``.

The catalog is split by kind (text, numbers, dates, codes, lookups); adding a transform is one decorated
function in one of those modules, with an ``Example:`` in its docstring.
"""

from __future__ import annotations

from erpsync.mapping.transforms import codes, dates, lookups, numbers, text  # noqa: F401  (registers them)
from erpsync.mapping.transforms.registry import (
    TRANSFORMS,
    NoParams,
    TransformContext,
    TransformParams,
    TransformSpec,
    known_transforms,
    transform,
)

__all__ = [
    "TRANSFORMS",
    "NoParams",
    "TransformContext",
    "TransformParams",
    "TransformSpec",
    "known_transforms",
    "transform",
]
