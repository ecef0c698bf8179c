"""The session-wide log scan (tests/conftest.py) really sees log lines and really finds leaks."""
import logging

from tests.conftest import _SecretScan

logger = logging.getLogger("syncops.tests.scan")


def test_the_session_scanner_receives_this_process_log_lines(_scan_logs_for_secrets):
    before = _scan_logs_for_secrets.lines
    logger.warning("a perfectly ordinary line")
    assert _scan_logs_for_secrets.lines == before + 1


def test_a_raw_secret_in_a_message_is_caught_and_a_keyed_one_is_redacted_first():
    scan = _SecretScan()
    scan.secrets.add("sandbox-shared-secret-0123456789")
    probe = logging.getLogger("syncops.tests.scan.private")
    probe.propagate = False
    probe.addHandler(scan)
    try:
        probe.warning("connected", extra={"shared_secret": "sandbox-shared-secret-0123456789"})
        assert scan.leaks == []  # redacted by key before formatting
        probe.warning("oops %s", "sandbox-shared-secret-0123456789")
        assert len(scan.leaks) == 1
    finally:
        probe.removeHandler(scan)
