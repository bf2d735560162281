"""Shared pytest configuration.  The loopback server fixtures (``gcs_server``,
``gcs_bucket``) come from the ``resumable_media.testing.plugin`` pytest plugin,
registered through the package's ``pytest11`` entry point."""
