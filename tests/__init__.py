"""Tests; a package so pytest puts the repository root, not tests/, on sys.path (tests/connectors would
otherwise shadow the top-level `connectors` package)."""
