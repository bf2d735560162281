"""Internals of the transfer benchmark harness; the public API is :mod:`resumable_media.bench`."""
