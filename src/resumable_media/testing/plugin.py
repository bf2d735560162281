"""pytest plugin shipping the ``gcs_server`` fixture (work in progress)."""
