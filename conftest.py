"""Root conftest: shared plugins. Fixtures for real services live in tests/conftest.py."""
pytest_plugins: list[str] = []
