#!/usr/bin/env python3
"""Writes tests/vectors/<name>/<name>.{req,creq,sts,authz} (+ .presigned) for the AWS SigV4 test suite.

Source of the requests and their published signatures: the AWS signing test suite
(AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service",
20150830T123600Z) as stored in awslabs/aws-c-auth tests/aws-signing-test-suite/v4/<name>/
header-signed-request.txt and query-signed-request.txt (the .req is the signed request
with its Authorization line removed; .authz is that line's value). The old 2015 suite
names the normalized path cases without the "-normalized" suffix; those names are used here.

.creq and .sts are derived with botocore's SigV4Auth; the script aborts on the first case
whose botocore signature differs from the published one, so the derived files are pinned
to the published data.

Usage: python3 crates/auth/tests/gen_suite_vectors.py  (writes next to this script)
"""
# header-signed-request.txt contents, as published in awslabs/aws-c-auth tests/aws-signing-test-suite/v4
AUTH = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
def a(sh, sig): return AUTH + "SignedHeaders=" + sh + ", Signature=" + sig
D = "X-Amz-Date:20150830T123600Z\n"
H = "Host:example.amazonaws.com\n"
STD = "host;x-amz-date"
CASES = {
 "get-vanilla": ("GET / HTTP/1.1\n" + H + D + "\n", a(STD, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")),
 "get-vanilla-query-order-key-case": ("GET /?Param2=value2&Param1=value1 HTTP/1.1\n" + H + D + "\n", a(STD, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")),
 "get-vanilla-empty-query-key": ("GET /?Param1=value1 HTTP/1.1\n" + H + D + "\n", a(STD, "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb")),
 "get-vanilla-query-unreserved": ("GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\n" + H + D + "\n", a(STD, "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197")),
 "get-vanilla-utf8-query": ("GET /?\u1234=bar HTTP/1.1\n" + H + D + "\n", a(STD, "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04")),
 "get-vanilla-query-order-encoded": ("GET /?Param-3=Value3&Param=Value2&%E1%88%B4=Value1 HTTP/1.1\n" + H + D + "\n", a(STD, "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac")),
 "get-header-value-trim": ("GET / HTTP/1.1\n" + H + "My-Header1: value1\nMy-Header2: \"a   b   c\"\n" + D + "\n", a("host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736")),
 "get-header-key-duplicate": ("GET / HTTP/1.1\n" + H + "My-Header1:value2\nMy-Header1:value2\nMy-Header1:value1\n" + D + "\n", a("host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea")),
 "get-header-value-order": ("GET / HTTP/1.1\n" + H + "My-Header1:value4\nMy-Header1:value1\nMy-Header1:value3\nMy-Header1:value2\n" + D + "\n", a("host;my-header1;x-amz-date", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01")),
 "get-unreserved": ("GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\n" + H + D + "\n", a(STD, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f")),
 "get-utf8": ("GET /\u1234 HTTP/1.1\n" + H + D + "\n", a(STD, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85")),
 "get-space": ("GET /example space/ HTTP/1.1\n" + H + D + "\n", a(STD, "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741")),
 "get-slash": ("GET // HTTP/1.1\n" + H + D + "\n", a(STD, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")),
 "get-slashes": ("GET //example// HTTP/1.1\n" + H + D + "\n", a(STD, "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84")),
 "get-slash-dot-slash": ("GET /./ HTTP/1.1\n" + H + D + "\n", a(STD, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")),
 "get-slash-pointless-dot": ("GET /./example HTTP/1.1\n" + H + D + "\n", a(STD, "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5")),
 "get-relative": ("GET /example/.. HTTP/1.1\n" + H + D + "\n", a(STD, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")),
 "get-relative-relative": ("GET /example1/example2/../.. HTTP/1.1\n" + H + D + "\n", a(STD, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")),
 "post-vanilla": ("POST / HTTP/1.1\n" + H + D + "\n", a(STD, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")),
 "post-vanilla-query": ("POST /?Param1=value1 HTTP/1.1\n" + H + D + "\n", a(STD, "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11")),
 "post-header-key-sort": ("POST / HTTP/1.1\n" + H + "My-Header1:value1\n" + D + "\n", a("host;my-header1;x-amz-date", "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c")),
 "post-header-value-case": ("POST / HTTP/1.1\n" + H + "My-Header1:VALUE1\n" + D + "\n", a("host;my-header1;x-amz-date", "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d")),
 "post-x-www-form-urlencoded": ("POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded\n" + H + "Content-Length:13\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n" + D + "\nParam1=value1", a("content-length;content-type;host;x-amz-content-sha256;x-amz-date", "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b")),
 "post-x-www-form-urlencoded-parameters": ("POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded; charset=utf-8\n" + H + "Content-Length:13\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n" + D + "\nParam1=value1", a("content-length;content-type;host;x-amz-content-sha256;x-amz-date", "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422")),
}
# query-signed-request.txt (presigned form), same source
PRESIGNED = {
 "get-vanilla-query-order-key-case": "GET /?Param2=value2&Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5 HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\n",
 "get-header-value-trim": "GET /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host%3Bmy-header1%3Bmy-header2&X-Amz-Expires=3600&X-Amz-Signature=e7bb0fd515e125e1aec2ecc4c0c17484fb06f6846b927c35e46005dd3df3acd4 HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1: value1\nMy-Header2: \"a   b   c\"\nX-Amz-Date:20150830T123600Z\n\n",
}
import os, sys, urllib.parse
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors")
creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

def parse(text):
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    rl = lines[0]
    assert rl.endswith(" HTTP/1.1")
    method, _, target = rl[: -len(" HTTP/1.1")].partition(" ")
    path, _, query = target.partition("?")
    headers = [tuple(l.split(":", 1)) for l in lines[1:]]
    return method, path, query, headers, body

for name, (text, authz) in CASES.items():
    method, path, query, headers, body = parse(text)
    params = {}
    for pair in filter(None, query.split("&")):
        k, _, v = pair.partition("=")
        params[urllib.parse.unquote(k)] = urllib.parse.unquote(v)
    req = AWSRequest(method=method, url="https://example.amazonaws.com" + path, data=body.encode(), params=params)
    for k, v in headers:
        if k.lower() != "host":
            req.headers[k] = v  # HTTPHeaders appends, so duplicates survive
    req.context["timestamp"] = "20150830T123600Z"
    auth = SigV4Auth(creds, "service", "us-east-1")
    creq = auth.canonical_request(req)
    sts = auth.string_to_sign(req, creq)
    sig = auth.signature(sts, req)
    pub_sig = authz.rsplit("Signature=", 1)[1]
    if sig != pub_sig:
        sys.exit(f"botocore disagrees with the published signature for {name}")
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    for ext, data in (("req", text), ("creq", creq), ("sts", sts), ("authz", authz)):
        with open(os.path.join(d, f"{name}.{ext}"), "w", encoding="utf-8", newline="") as f:
            f.write(data)

for name, text in PRESIGNED.items():
    with open(os.path.join(out, name, f"{name}.presigned"), "w", encoding="utf-8", newline="") as f:
        f.write(text)
print(f"wrote {len(CASES)} cases ({len(PRESIGNED)} with presigned forms) under {out}")
