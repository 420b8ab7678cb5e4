"""schemathesis hooks for EDK's fuzzing tests (loaded with SCHEMATHESIS_HOOKS).

- Every answer schemathesis gets is appended to the JSON-lines file named by
  EDK_SCHEMATHESIS_LOG as {"operation": "GET /path/{param}", "status": 200}, so the Rust
  test can prove the run got past authentication on each operation.
- EDK_SCHEMATHESIS_KNOWN, a JSON object {"<path parameter name>": ["value", ...]}, names
  resources that exist on the tenant: about half of the generated values of such a parameter
  are replaced by one of them (chosen from a hash of the generated value, so a run with a
  seed is repeatable), so that operations on existing keys, clients and DIDs are exercised
  beyond 404. DELETE operations use the values listed under "DELETE <name>" instead, so
  that the resources the other operations need are not destroyed early in the run.
  Entries named "body <field>" do the same for the fields of JSON object bodies, so that
  generated requests name existing keys, supported algorithms and valid encodings often
  enough to get past input validation.
- EDK_SCHEMATHESIS_EXAMPLES, a JSON object {"POST /path": <body>}, adds a request body
  example to those operations before the document is loaded, so the examples phase sends
  at least one request that succeeds and its success response is checked too.
"""

import json
import os
import threading
import zlib

import schemathesis

_LOG = os.environ.get("EDK_SCHEMATHESIS_LOG")
_KNOWN = json.loads(os.environ.get("EDK_SCHEMATHESIS_KNOWN") or "{}")
_EXAMPLES = json.loads(os.environ.get("EDK_SCHEMATHESIS_EXAMPLES") or "{}")
_LOCK = threading.Lock()


@schemathesis.hook
def before_load_schema(context, raw_schema):
    for label, body in _EXAMPLES.items():
        method, path = label.split(" ", 1)
        operation = raw_schema.get("paths", {}).get(path, {}).get(method.lower())
        if operation is None:
            raise ValueError(f"no operation {label} in the document")
        for media in operation.get("requestBody", {}).get("content", {}).values():
            media["example"] = body


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    if not path_parameters:
        return path_parameters
    method = context.operation.method.upper() if context.operation else ""
    for name, value in list(path_parameters.items()):
        known = _KNOWN.get(f"DELETE {name}") if method == "DELETE" else _KNOWN.get(name)
        if not known:
            continue
        picked = _pick(known, value)
        if picked is not None:
            path_parameters[name] = picked
    return path_parameters


def _pick(known, value, salt=""):
    """One of `known` for about half of the values, `None` for the others."""
    digest = zlib.crc32((salt + repr(value)).encode())
    if digest % 2:
        return None
    return known[(digest // 2) % len(known)]


@schemathesis.hook
def map_body(context, body):
    if not isinstance(body, dict):
        return body
    for field, value in list(body.items()):
        known = _KNOWN.get(f"body {field}")
        if known:
            picked = _pick(known, value, field)
            if picked is not None:
                body[field] = picked
    return body


@schemathesis.hook
def after_call(context, case, response):
    if not _LOG:
        return
    line = json.dumps(
        {"operation": f"{case.method.upper()} {case.path}", "status": response.status_code}
    )
    with _LOCK:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(line + "\n")
