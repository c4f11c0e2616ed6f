"""Strict validation of raw AWS JSON 1.1 responses against the botocore model.

botocore's own parser is lenient: it ignores unknown members, happily turns
``null`` into ``None``, accepts ``true`` where an integer is modeled and
parses timestamps given as strings.  Real SDKs in other languages (Go, Rust,
Java, JS v3) are less forgiving, so a server that speaks the ECS API has to
produce exactly what the model says.  This module checks the *raw* body bytes
of a response -- before botocore has had a chance to smooth anything over.

Rules (each broken rule is one violation string, prefixed with a JSON path):

* Structures: every member must be modeled (``$.clusters[0].foo`` is flagged
  when ``foo`` is not a member of ``Cluster``); members listed in the
  structure's ``required`` trait must be present.
* ``null`` is never valid anywhere; absent members must be omitted.
* string  -> ``str``; if the shape has an ``enum``, one of its values.
* integer/long -> ``int`` (not ``bool``, not ``float`` -- not even ``1.0``).
* boolean -> ``bool`` (``0``/``1`` are not booleans).
* double/float -> ``int`` or ``float`` but not ``bool`` (and finite).
* timestamp -> a number of epoch seconds (``int``/``float``, not ``bool``,
  not an ISO-8601 string), which is what AWS JSON 1.1 puts on the wire.
* blob -> a base64 ``str``.
* list -> ``list``; map -> ``dict`` whose keys and values are valid;
  structure -> ``dict``.
* Length/range constraints: the model's ``min``/``max`` on strings (length),
  lists and maps (number of entries) and numbers (value) ARE violations.
  In the ECS model these only appear where they are unambiguous for output
  too (tags: at most 50, key 1..128 chars, value 0..256 chars; port numbers
  0..65535, capacity-provider weights, ...), and a server that sends a value
  outside them produces data that the service itself could never return.
  ``pattern`` traits are NOT checked: they are written in Java regex syntax
  (``\\p{L}`` ...) and they describe inputs far more than outputs.

Error responses (HTTP status >= 300):

* body must be ``{"__type": code, "message": str}``.  A ``namespace#`` prefix
  on the code is accepted (that is what many AWS services send) and so is a
  ``:<uri>`` suffix; ``Message`` instead of ``message`` is tolerated by the
  SDKs and therefore only flagged in ``strict_envelope`` mode (which is how
  berth is tested: berth must send exactly ``__type`` + ``message``).
  Extra members are allowed only when they are members of the modeled error
  structure (and then they are validated like any output member).
* the code must be one of the operation's modeled errors or one of the
  common AWS errors in :data:`COMMON_ERRORS`.
* the ``x-amzn-ErrorType`` header, when present, must name the same code;
  in ``strict_envelope`` mode it must be present.
* ``Content-Type`` must be ``application/x-amz-json-<jsonVersion>`` of the
  service's model (1.1 for ECS, 1.0 for SQS), success or error.
* services marked ``awsQueryCompatible`` (SQS) must also send
  ``x-amzn-query-error: <code>;Sender|Receiver`` with every error: that
  code is what clients report (``AWS.SimpleQueueService.NonExistentQueue``).
* the HTTP status must match the error shape: ``httpStatusCode`` from the
  model's ``error`` trait, default 400, 500 when the shape is a ``fault``.

Use :func:`validate_response` to get the list of violations or
:func:`assert_valid` to raise ``AssertionError`` listing them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from functools import lru_cache
from typing import Any, Iterable, Mapping, Optional

import botocore.session

CONTENT_TYPE = "application/x-amz-json-1.1"

#: Errors any AWS JSON endpoint may return whatever the operation, with the
#: HTTP statuses AWS uses for them.  Authentication errors come as 400 from
#: the classic JSON services (and 403 from some front ends), so both are
#: accepted for those.
COMMON_ERRORS: dict[str, frozenset[int]] = {
    "SerializationException": frozenset({400}),
    "UnknownOperationException": frozenset({400}),
    "MissingAuthenticationTokenException": frozenset({400, 403}),
    "IncompleteSignatureException": frozenset({400, 403}),
    "UnrecognizedClientException": frozenset({400, 403}),
    "InvalidSignatureException": frozenset({400, 403}),
    "AccessDeniedException": frozenset({400, 403}),
    "ThrottlingException": frozenset({400}),
    "ValidationException": frozenset({400}),
    # Front-end refusals before an operation runs: no room left in the
    # request-body budget (SDKs retry it), and a body sent too slowly.
    "ServiceUnavailableException": frozenset({503}),
    "RequestTimeoutException": frozenset({408}),
}

#: ECS's ServerException is not marked ``fault`` in the model, but the API
#: reference describes it as "a server issue"; a 500 is what the service
#: actually sends, so 500 is accepted in addition to the modeled default.
EXTRA_STATUSES: dict[str, frozenset[int]] = {
    "ServerException": frozenset({500}),
}


@lru_cache(maxsize=None)
def service_model(service: str = "ecs"):
    return botocore.session.get_session().get_service_model(service)


def operation_model(op: str, service: str = "ecs"):
    return service_model(service).operation_model(op)


# --------------------------------------------------------------------------
# Shape walking
# --------------------------------------------------------------------------

def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(shape, value, path: str, out: list[str], what: str) -> None:
    meta = shape.metadata
    if "min" in meta and value < meta["min"]:
        out.append(f"{path}: {what} {value} is below the model's min {meta['min']} ({shape.name})")
    if "max" in meta and value > meta["max"]:
        out.append(f"{path}: {what} {value} is above the model's max {meta['max']} ({shape.name})")


def validate_value(shape, value: Any, path: str, out: list[str]) -> None:
    """Append to ``out`` every way in which ``value`` does not fit ``shape``."""
    if value is None:
        out.append(f"{path}: null is not allowed (omit absent members) [{shape.name}]")
        return
    t = shape.type_name
    got = _type_name(value)

    if t == "structure":
        if not isinstance(value, dict):
            out.append(f"{path}: expected object for structure {shape.name}, got {got}")
            return
        members = shape.members
        for key, member_value in value.items():
            child = f"{path}.{key}"
            if key not in members:
                out.append(f"{child}: unknown member (not in {shape.name})")
                continue
            validate_value(members[key], member_value, child, out)
        for req in shape.required_members:
            if req not in value:
                out.append(f"{path}.{req}: required member of {shape.name} is missing")
        if shape.metadata.get("union") and len(value) > 1:
            out.append(f"{path}: union {shape.name} has {len(value)} members set")
    elif t == "list":
        if not isinstance(value, list):
            out.append(f"{path}: expected array for list {shape.name}, got {got}")
            return
        _check_range(shape, len(value), path, out, "list length")
        for i, item in enumerate(value):
            validate_value(shape.member, item, f"{path}[{i}]", out)
    elif t == "map":
        if not isinstance(value, dict):
            out.append(f"{path}: expected object for map {shape.name}, got {got}")
            return
        _check_range(shape, len(value), path, out, "map size")
        for k, v in value.items():
            validate_value(shape.key, k, f"{path}<key {k!r}>", out)
            validate_value(shape.value, v, f"{path}[{k!r}]", out)
    elif t == "string":
        if not isinstance(value, str):
            out.append(f"{path}: expected string ({shape.name}), got {got} {value!r}")
            return
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            out.append(f"{path}: {value!r} is not a value of enum {shape.name} {sorted(enum)}")
        _check_range(shape, len(value), path, out, "string length")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            out.append(f"{path}: expected {t} ({shape.name}), got {got} {value!r}")
            return
        if t == "integer" and not (-(2**31) <= value < 2**31):
            out.append(f"{path}: {value} does not fit a 32-bit integer ({shape.name})")
        if t == "long" and not (-(2**63) <= value < 2**63):
            out.append(f"{path}: {value} does not fit a 64-bit long ({shape.name})")
        _check_range(shape, value, path, out, "value")
    elif t == "boolean":
        if not isinstance(value, bool):
            out.append(f"{path}: expected boolean ({shape.name}), got {got} {value!r}")
    elif t in ("double", "float"):
        if not _is_number(value):
            out.append(f"{path}: expected number ({shape.name}), got {got} {value!r}")
            return
        if isinstance(value, float) and not math.isfinite(value):
            out.append(f"{path}: non-finite number {value!r} ({shape.name})")
        _check_range(shape, value, path, out, "value")
    elif t == "timestamp":
        if not _is_number(value):
            out.append(
                f"{path}: expected timestamp as epoch seconds (number), got {got} {value!r} ({shape.name})"
            )
            return
        if isinstance(value, float) and not math.isfinite(value):
            out.append(f"{path}: non-finite timestamp {value!r}")
        elif value < 0 or value > 32503680000:  # year 3000
            out.append(f"{path}: implausible epoch-seconds timestamp {value!r} (milliseconds?)")
    elif t == "blob":
        if not isinstance(value, str):
            out.append(f"{path}: expected base64 string for blob {shape.name}, got {got}")
            return
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            out.append(f"{path}: blob {shape.name} is not valid base64")
    else:  # pragma: no cover - no other shape types in JSON protocols
        out.append(f"{path}: unsupported shape type {t} ({shape.name})")


# --------------------------------------------------------------------------
# Whole responses
# --------------------------------------------------------------------------

def content_type(service: str = "ecs") -> str:
    version = service_model(service).metadata.get("jsonVersion", "1.1")
    return f"application/x-amz-json-{version}"


def _header(headers: Optional[Mapping[str, str]], name: str) -> Optional[str]:
    if not headers:
        return None
    lname = name.lower()
    for k, v in headers.items():
        if k.lower() == lname:
            return v
    return None


def normalize_error_code(raw: str) -> str:
    """``aws.protocoltests#FooError:http://...`` -> ``FooError``."""
    code = raw.split("#")[-1]
    return code.split(":")[0]


def modeled_errors(op_model) -> dict[str, Any]:
    if op_model is None:
        return {}
    return {
        (s.metadata.get("error", {}).get("code") or s.name): s
        for s in op_model.error_shapes
    }


def expected_statuses(code: str, op_model) -> Optional[frozenset[int]]:
    """HTTP statuses allowed for ``code``, or None if the code is not allowed."""
    errors = modeled_errors(op_model)
    if code in errors:
        shape = errors[code]
        err = shape.metadata.get("error", {})
        if "httpStatusCode" in err:
            status = err["httpStatusCode"]
        elif shape.metadata.get("fault"):
            status = 500
        else:
            status = 400
        return frozenset({status}) | EXTRA_STATUSES.get(code, frozenset())
    if code in COMMON_ERRORS:
        return COMMON_ERRORS[code]
    return None


def _parse_body(raw_body: bytes | str, out: list[str]) -> tuple[bool, Any]:
    if isinstance(raw_body, (bytes, bytearray)):
        try:
            text = bytes(raw_body).decode("utf-8")
        except UnicodeDecodeError:
            out.append("$: body is not UTF-8")
            return False, None
    else:
        text = raw_body
    try:
        return True, json.loads(text)
    except ValueError as e:
        excerpt = text[:200]
        out.append(f"$: body is not JSON ({e}): {excerpt!r}")
        return False, None


def validate_error(
    op: Optional[str],
    body: Any,
    status: int,
    headers: Optional[Mapping[str, str]] = None,
    *,
    service: str = "ecs",
    strict_envelope: bool = True,
) -> list[str]:
    """Violations of an already-parsed error body."""
    out: list[str] = []
    op_model = None
    if op is not None:
        try:
            op_model = operation_model(op, service)
        except Exception:
            op_model = None  # unknown operation: only common errors allowed
    if not isinstance(body, dict):
        return [f"$: error body must be an object, got {_type_name(body)}"]
    raw_code = body.get("__type")
    if raw_code is None:
        for alt in ("code", "Code"):
            if isinstance(body.get(alt), str):
                raw_code = body[alt]
                out.append(f"$.{alt}: error code must be sent as __type")
                break
    if not isinstance(raw_code, str) or not raw_code:
        out.append(f"$.__type: missing or not a string: {raw_code!r}")
        return out
    code = normalize_error_code(raw_code)
    if strict_envelope and raw_code != code:
        out.append(f"$.__type: {raw_code!r} should be the bare code {code!r}")

    msg_keys = [k for k in ("message", "Message") if k in body]
    if not msg_keys:
        out.append("$.message: error message is missing")
    for k in msg_keys:
        if not isinstance(body[k], str):
            out.append(f"$.{k}: error message must be a string, got {_type_name(body[k])}")
    if strict_envelope and "message" not in body and "Message" in body:
        out.append("$.Message: must be lower-case 'message'")
    if len(msg_keys) == 2:
        out.append("$: both 'message' and 'Message' present")

    errors = modeled_errors(op_model)
    allowed = expected_statuses(code, op_model)
    if allowed is None:
        out.append(
            f"$.__type: {code!r} is neither a modeled error of {op} "
            f"({sorted(errors)}) nor a common AWS error"
        )
    elif status not in allowed:
        out.append(f"HTTP status {status} does not match {code} (expected {sorted(allowed)})")

    error_shape = errors.get(code)
    for key, value in body.items():
        if key in ("__type", "message", "Message"):
            if value is None:
                out.append(f"$.{key}: null is not allowed")
            continue
        if error_shape is not None and key in error_shape.members:
            validate_value(error_shape.members[key], value, f"$.{key}", out)
        else:
            out.append(f"$.{key}: unknown member in error envelope")

    header = _header(headers, "x-amzn-ErrorType")
    if header is None:
        if strict_envelope:
            out.append("header x-amzn-ErrorType is missing")
    elif normalize_error_code(header) != code:
        out.append(f"header x-amzn-ErrorType {header!r} does not match __type {raw_code!r}")
    if "awsQueryCompatible" in service_model(service).metadata:
        query = _header(headers, "x-amzn-query-error")
        parts = (query or "").split(";")
        if query is None:
            out.append("header x-amzn-query-error is missing (the service is query-compatible)")
        elif len(parts) != 2 or not parts[0] or parts[1] not in ("Sender", "Receiver"):
            out.append(f"header x-amzn-query-error {query!r} is not '<code>;Sender|Receiver'")
    return out


def validate_response(
    op: Optional[str],
    raw_body: bytes | str,
    status: int,
    headers: Optional[Mapping[str, str]] = None,
    *,
    service: str = "ecs",
    strict_envelope: bool = True,
    require_request_id: bool = False,
) -> list[str]:
    """All violations of one raw response to operation ``op``.

    ``op`` may be None (or a name not in the model) for requests whose target
    is unknown; then only an error envelope with a common code is valid.
    Services of the XML protocols (``query``, ``ec2``) are checked by
    :mod:`xml_validator`.
    """
    model = service_model(service)
    if model.protocol in ("query", "ec2"):
        import xml_validator
        return xml_validator.validate_response(model, op, raw_body, status, headers,
                                               require_request_id=require_request_id)
    out: list[str] = []
    if headers is not None:
        ctype = _header(headers, "Content-Type")
        if ctype is None:
            out.append("header Content-Type is missing")
        elif ctype.split(";")[0].strip().lower() != content_type(service):
            out.append(f"header Content-Type is {ctype!r}, expected {content_type(service)!r}")
        if require_request_id and not _header(headers, "x-amzn-RequestId"):
            out.append("header x-amzn-RequestId is missing")

    ok, body = _parse_body(raw_body, out)
    if not ok:
        return out

    if status >= 300:
        out.extend(validate_error(op, body, status, headers, service=service,
                                  strict_envelope=strict_envelope))
        return out

    if status != 200:
        out.append(f"HTTP status {status} for a successful response (expected 200)")
    try:
        op_model = operation_model(op, service) if op else None
    except Exception:
        op_model = None
    if op_model is None:
        out.append(f"success response for an operation not in the model: {op!r}")
        return out
    shape = op_model.output_shape
    if shape is None:
        if body != {}:
            out.append(f"$: {op} has no output, body should be {{}}, got {body!r:.200}")
        return out
    validate_value(shape, body, "$", out)
    return out


def assert_valid(
    op: Optional[str],
    raw_body: bytes | str,
    status: int,
    headers: Optional[Mapping[str, str]] = None,
    **kwargs,
) -> Any:
    """Raise AssertionError listing every violation; return the parsed body."""
    violations = validate_response(op, raw_body, status, headers, **kwargs)
    if violations:
        excerpt = raw_body[:2000] if raw_body is not None else raw_body
        raise AssertionError(
            f"{op} response (HTTP {status}) violates the model:\n  "
            + "\n  ".join(violations)
            + f"\nbody: {excerpt!r}"
        )
    return json.loads(raw_body)


def format_violations(records: Iterable[Mapping[str, Any]]) -> str:
    lines = []
    for r in records:
        lines.append(f"- {r.get('source', '?')} {r['op']} HTTP {r['status']}:")
        lines.extend(f"    {v}" for v in r["violations"])
        body = r.get("body")
        if body:
            lines.append(f"    body: {body[:600]}")
    return "\n".join(lines)
