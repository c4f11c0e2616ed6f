"""Strict validation of raw XML responses of the ``query`` and ``ec2``
protocols (STS, IAM, EC2) against the botocore model.

The XML counterpart of :mod:`shape_validator`: botocore's XML parsers skip
elements they do not know and read any text as a string, so this checks the
raw bytes for what botocore's ``QueryParser``/``EC2QueryParser`` expect:

* success: root ``<{Op}Response xmlns="{the model's xmlNamespace}">``; EC2
  puts ``<requestId>`` first and the output's members after it; query puts
  them in ``<{resultWrapper}>`` followed by
  ``<ResponseMetadata><RequestId>``, and nothing else.
* structures: every element is a member (by ``locationName``, else the
  member name; flattened lists by their items' name), a non-flattened
  member at most once, required members present.
* lists: ``<name><item>…</item></name>`` (EC2's ``locationName`` of the
  items, ``member`` by default); maps ``<entry><key/><value/></entry>``.
* scalars: no child elements; integers, ``true``/``false``, numbers, ISO
  8601 timestamps (``2026-01-02T03:04:05.000Z``), base64 blobs; strings in
  the enum when the shape has one; length/range ``min``/``max``.
* errors: EC2 ``<Response><Errors><Error><Code/><Message/></Error></Errors>
  <RequestID/></Response>``; query ``<ErrorResponse><Error><Type>Sender|
  Receiver</Type><Code/><Message/></Error><RequestId/></ErrorResponse>``;
  the code modeled for the operation or a known one, with its status.
* ``Content-Type: text/xml`` and an ``x-amzn-RequestId`` header.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from typing import Any, Mapping, Optional

CONTENT_TYPE = "text/xml"

#: Errors of the XML protocols that any operation may answer, with their
#: statuses: AWS's common errors (authentication, throttling, malformed or
#: unknown actions, parameters) and the front end's refusals.
COMMON_ERRORS: dict[str, frozenset[int]] = {
    "MissingAuthenticationToken": frozenset({403}),
    "IncompleteSignature": frozenset({400}),
    "InvalidClientTokenId": frozenset({403}),
    "AuthFailure": frozenset({401}),
    "SignatureDoesNotMatch": frozenset({403}),
    "AccessDenied": frozenset({403}),
    "UnauthorizedOperation": frozenset({403}),
    "Throttling": frozenset({400}),
    "RequestLimitExceeded": frozenset({503}),
    "ServiceUnavailable": frozenset({503}),
    "Unavailable": frozenset({503}),
    "RequestEntityTooLarge": frozenset({413}),
    "RequestTimeout": frozenset({408}),
    "InvalidAction": frozenset({400}),
    "MissingAction": frozenset({400}),
    "MalformedQueryString": frozenset({400}),
    "UnsupportedOperation": frozenset({400}),
    "MissingParameter": frozenset({400}),
    "InvalidParameterValue": frozenset({400}),
    "InvalidParameter": frozenset({400}),
    "UnknownParameter": frozenset({400}),
    "ValidationError": frozenset({400}),
    "InternalError": frozenset({500}),
    "InternalFailure": frozenset({500}),
    "DryRunOperation": frozenset({412}),
}

#: EC2 models no errors; these are its documented codes (Amazon EC2 API
#: Reference, "Error codes") that berth answers.
EC2_ERRORS: dict[str, frozenset[int]] = {
    code: frozenset({400}) for code in (
        "InvalidVpcID.NotFound", "InvalidSubnetID.NotFound", "InvalidGroup.NotFound",
        "InvalidGroup.Duplicate", "InvalidPermission.Duplicate", "CannotDelete",
        "InvalidInstanceID.NotFound",
    )
}

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
INTEGER = re.compile(r"^-?\d+$")


def _tag(el: ET.Element) -> str:
    return el.tag.split("}", 1)[-1]


def _ns(el: ET.Element) -> Optional[str]:
    return el.tag[1:].split("}", 1)[0] if el.tag.startswith("{") else None


def _range(shape, value, path: str, out: list[str], what: str) -> None:
    meta = shape.metadata
    if "min" in meta and value < meta["min"]:
        out.append(f"{path}: {what} {value} is below the model's min {meta['min']} ({shape.name})")
    if "max" in meta and value > meta["max"]:
        out.append(f"{path}: {what} {value} is above the model's max {meta['max']} ({shape.name})")


def _xml_name(member_shape, member_name: str) -> str:
    """The element name botocore's XML parser looks a member up by."""
    ser = member_shape.serialization
    if member_shape.type_name == "list" and ser.get("flattened"):
        item = member_shape.member.serialization.get("name")
        if item:
            return item
    return ser.get("name") or member_name


def validate_element(shape, el: ET.Element, path: str, out: list[str]) -> None:
    t = shape.type_name
    children = list(el)
    if t == "structure":
        validate_members(shape, children, path, out)
        return
    if t == "list":
        item_name = shape.member.serialization.get("name", "member")
        for i, child in enumerate(children):
            if _tag(child) != item_name:
                out.append(f"{path}/{_tag(child)}: list {shape.name} items must be <{item_name}>")
                continue
            validate_element(shape.member, child, f"{path}/{item_name}[{i}]", out)
        _range(shape, len(children), path, out, "list length")
        if (el.text or "").strip():
            out.append(f"{path}: list {shape.name} has text {el.text!r}")
        return
    if t == "map":
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        for i, entry in enumerate(children):
            if _tag(entry) != "entry":
                out.append(f"{path}/{_tag(entry)}: map {shape.name} entries must be <entry>")
                continue
            tags = [_tag(c) for c in entry]
            if sorted(tags) != sorted([key_name, value_name]):
                out.append(f"{path}/entry[{i}]: expected <{key_name}> and <{value_name}>, got {tags}")
                continue
            for c in entry:
                s = shape.key if _tag(c) == key_name else shape.value
                validate_element(s, c, f"{path}/entry[{i}]/{_tag(c)}", out)
        return
    if children:
        out.append(f"{path}: scalar {shape.name} ({t}) has child elements")
        return
    text = el.text or ""
    if t == "string":
        enum = shape.metadata.get("enum")
        if enum and text not in enum:
            out.append(f"{path}: {text!r} is not a value of enum {shape.name} {sorted(enum)}")
        _range(shape, len(text), path, out, "string length")
    elif t in ("integer", "long"):
        if not INTEGER.match(text):
            out.append(f"{path}: expected {t} ({shape.name}), got {text!r}")
            return
        _range(shape, int(text), path, out, "value")
    elif t == "boolean":
        if text not in ("true", "false"):
            out.append(f"{path}: expected true or false ({shape.name}), got {text!r}")
    elif t in ("double", "float"):
        try:
            _range(shape, float(text), path, out, "value")
        except ValueError:
            out.append(f"{path}: expected a number ({shape.name}), got {text!r}")
    elif t == "timestamp":
        if not TIMESTAMP.match(text):
            out.append(f"{path}: expected an ISO 8601 timestamp ({shape.name}), got {text!r}")
    elif t == "blob":
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            out.append(f"{path}: blob {shape.name} is not valid base64")
    else:  # pragma: no cover
        out.append(f"{path}: unsupported shape type {t} ({shape.name})")


def validate_members(shape, children: list[ET.Element], path: str, out: list[str]) -> None:
    by_xml = {_xml_name(s, n): (n, s) for n, s in shape.members.items()}
    seen: dict[str, int] = {}
    for child in children:
        tag = _tag(child)
        if tag not in by_xml:
            out.append(f"{path}/{tag}: unknown element (not a member of {shape.name})")
            continue
        name, member = by_xml[tag]
        seen[name] = seen.get(name, 0) + 1
        flattened = member.type_name == "list" and member.serialization.get("flattened")
        if flattened:
            validate_element(member.member, child, f"{path}/{tag}[{seen[name] - 1}]", out)
        else:
            if seen[name] == 2:
                out.append(f"{path}/{tag}: member {name} of {shape.name} appears more than once")
            validate_element(member, child, f"{path}/{tag}", out)
    for req in shape.required_members:
        if req not in seen:
            out.append(f"{path}/{req}: required member of {shape.name} is missing")


def _header(headers: Optional[Mapping[str, str]], name: str) -> Optional[str]:
    for k, v in (headers or {}).items():
        if k.lower() == name.lower():
            return v
    return None


def _namespace(model) -> str:
    ns = model.metadata.get("xmlNamespace", "")
    return ns if ns.endswith("/") else ns + "/"


def validate_error(model, op: Optional[str], root: ET.Element, status: int) -> list[str]:
    out: list[str] = []
    ec2 = model.protocol == "ec2"
    if ec2:
        if _tag(root) != "Response":
            return [f"/: EC2 errors are <Response>, got <{_tag(root)}>"]
        tags = [_tag(c) for c in root]
        if tags != ["Errors", "RequestID"]:
            out.append(f"/Response: expected <Errors> and <RequestID>, got {tags}")
        errors = root.find("Errors")
        error_list = list(errors) if errors is not None else []
        if len(error_list) != 1 or _tag(error_list[0]) != "Error":
            return out + [f"/Response/Errors: expected one <Error>, got {[_tag(e) for e in error_list]}"]
        error = error_list[0]
        wanted = ["Code", "Message"]
        request_id = root.find("RequestID")
    else:
        if _tag(root) != "ErrorResponse":
            return [f"/: query errors are <ErrorResponse>, got <{_tag(root)}>"]
        tags = [_tag(c) for c in root]
        if tags != ["Error", "RequestId"]:
            out.append(f"/ErrorResponse: expected <Error> and <RequestId>, got {tags}")
        error = root.find("Error")
        if error is None:
            return out
        wanted = ["Type", "Code", "Message"]
        request_id = root.find("RequestId")
    got = [_tag(c) for c in error]
    if got != wanted:
        out.append(f"Error: expected {wanted}, got {got}")
    if request_id is None or not (request_id.text or "").strip():
        out.append("the error's request ID is missing")
    fields = {_tag(c): (c.text or "") for c in error}
    if not ec2 and fields.get("Type") not in ("Sender", "Receiver"):
        out.append(f"Error/Type: {fields.get('Type')!r} is neither Sender nor Receiver")
    if not ec2 and fields.get("Type") == "Receiver" and status < 500:
        out.append(f"Error/Type Receiver with HTTP status {status}")
    code = fields.get("Code", "")
    if not fields.get("Message"):
        out.append("Error/Message is empty")
    modeled: dict[str, frozenset[int]] = {}
    if op:
        try:
            for s in model.operation_model(op).error_shapes:
                err = s.metadata.get("error", {})
                modeled[err.get("code") or s.name] = frozenset({err.get("httpStatusCode", 400)})
        except Exception:
            pass
    allowed = modeled.get(code) or COMMON_ERRORS.get(code) or (EC2_ERRORS.get(code) if ec2 else None)
    if allowed is None:
        out.append(f"Error/Code {code!r} is neither modeled for {op} nor a known {model.service_name} error")
    elif status not in allowed:
        out.append(f"HTTP status {status} does not match {code} (expected {sorted(allowed)})")
    return out


def validate_response(
    model,
    op: Optional[str],
    raw_body: bytes | str,
    status: int,
    headers: Optional[Mapping[str, str]] = None,
    *,
    require_request_id: bool = True,
) -> list[str]:
    """All violations of one raw XML response of ``model``'s service."""
    out: list[str] = []
    if headers is not None:
        ctype = _header(headers, "Content-Type")
        if ctype is None or ctype.split(";")[0].strip().lower() != CONTENT_TYPE:
            out.append(f"header Content-Type is {ctype!r}, expected {CONTENT_TYPE!r}")
        if require_request_id and not _header(headers, "x-amzn-RequestId"):
            out.append("header x-amzn-RequestId is missing")
    try:
        root = ET.fromstring(raw_body)
    except ET.ParseError as e:
        return out + [f"body is not XML ({e}): {raw_body[:200]!r}"]
    if status >= 300:
        return out + validate_error(model, op, root, status)
    if status != 200:
        out.append(f"HTTP status {status} for a successful response (expected 200)")
    try:
        op_model = model.operation_model(op)
    except Exception:
        return out + [f"success response for an operation not in the model: {op!r}"]
    if _tag(root) != f"{op}Response":
        out.append(f"/: root is <{_tag(root)}>, expected <{op}Response>")
    if _ns(root) != _namespace(model):
        out.append(f"/: namespace is {_ns(root)!r}, expected {_namespace(model)!r}")
    children = list(root)
    shape = op_model.output_shape
    if model.protocol == "ec2":
        if not children or _tag(children[0]) != "requestId" or not (children[0].text or "").strip():
            out.append("/: EC2 answers start with a non-empty <requestId>")
        else:
            children = children[1:]
        if shape is not None:
            validate_members(shape, children, f"/{op}Response", out)
        elif children:
            out.append(f"/: {op} has no output, got {[_tag(c) for c in children]}")
        return out
    wrapper = shape.serialization.get("resultWrapper") if shape is not None else None
    expected = ([wrapper] if wrapper else []) + ["ResponseMetadata"]
    tags = [_tag(c) for c in children]
    if tags != expected:
        out.append(f"/{op}Response: expected {expected}, got {tags}")
    for c in children:
        if _tag(c) == wrapper:
            validate_members(shape, list(c), f"/{op}Response/{wrapper}", out)
        elif _tag(c) == "ResponseMetadata":
            meta = [_tag(m) for m in c]
            if meta != ["RequestId"] or not (c[0].text or "").strip():
                out.append(f"/ResponseMetadata: expected one non-empty <RequestId>, got {meta}")
    return out
