"""Exceptions raised by albert_onnx. All derive from :class:`AlbertOnnxError`."""

from __future__ import annotations


class AlbertOnnxError(Exception):
    """Base class of every error this package raises on purpose."""


class ArtifactError(AlbertOnnxError):
    """A model or artifact file is missing, corrupt or incompatible."""


class InputError(AlbertOnnxError, ValueError):
    """The caller's input (text, ids, options) is not valid."""


class ProviderError(AlbertOnnxError):
    """The requested ONNX Runtime execution provider cannot be used."""
