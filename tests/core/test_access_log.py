"""Station tokens never reach the access log of ``helpdesk serve``."""

import logging

from core.cli.setup import RedactTokens


def access_record(path: str) -> logging.LogRecord:
    # The shape of uvicorn's access log records: client, method, path, HTTP version, status.
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200),
        None,
    )


def test_token_in_the_query_is_masked_and_the_rest_kept() -> None:
    record = access_record("/stations/radio-dhading/ne/latest.mp3?token=s3cr3t-T0k&x=1")

    assert RedactTokens().filter(record)

    message = record.getMessage()
    assert "s3cr3t" not in message
    assert "/stations/radio-dhading/ne/latest.mp3?token=<redacted>&x=1" in message


def test_paths_without_a_token_are_untouched() -> None:
    record = access_record("/healthz")

    RedactTokens().filter(record)

    assert record.getMessage() == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'
