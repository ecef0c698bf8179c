"""A faithful local CardTrader (API v2) for tests, benchmarks and demos.

Run ``python -m cardtrader_sandbox --port PORT``; CardTrader's API is then at
``http://127.0.0.1:PORT/api/v2`` and the control API at ``/_sandbox``. See docs/SANDBOX.md.
The service never imports this package: only ``CARDTRADER_API_BASE`` points here.
"""
