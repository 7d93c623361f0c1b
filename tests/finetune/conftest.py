"""The tiny-model factory of tests/models (built once per session, cached on disk)."""

from tests.models.conftest import tiny_model  # noqa: F401 - a fixture
