"""Small helpers for asserting on botocore ClientErrors."""

from botocore.exceptions import ClientError


def error_code(excinfo) -> str:
    err = excinfo.value if hasattr(excinfo, "value") else excinfo
    assert isinstance(err, ClientError), f"not a ClientError: {err!r}"
    return err.response["Error"]["Code"]


def error_message(excinfo) -> str:
    err = excinfo.value if hasattr(excinfo, "value") else excinfo
    return err.response["Error"].get("Message", "")


def assert_error(excinfo, *codes: str, message_contains: str | None = None) -> str:
    """The error code is one of ``codes`` and carries a useful message."""
    code = error_code(excinfo)
    msg = error_message(excinfo)
    assert code in codes, f"expected {' or '.join(codes)}, got {code}: {msg}"
    assert msg.strip(), f"{code} without a message"
    if message_contains is not None:
        assert message_contains.lower() in msg.lower(), msg
    return msg
