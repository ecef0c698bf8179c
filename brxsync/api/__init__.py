"""The REST layer every endpoint stands on: auth, errors, idempotency, throttling, pagination."""
