"""Root conftest: shared plugins. Fixtures for real services live in tests/conftest.py."""
pytest_plugins: list[str] = ["cardtrader_sandbox.pytest_plugin"]
