"""Schemathesis hooks of `server/tests/schemathesis.rs`: the API's rules that JSON Schema cannot state.

OpenAPI describes each value on its own; a few rules of this API relate values to each other or to what
only the server can make. A schema-valid ("positive") case that breaks one of them is refused by the server,
rightly, and schemathesis would count that as "schema-valid request rejected". So each positive case is
brought within these rules before it is sent; everything else it carries is left as generated, and negative
cases are never touched. Each rule has its own test against the real server:

- a web list's `cursor` is signed by the server for one user and one filter, so no client can make one up:
  positive cases send none (forged, cut or foreign cursors: `web_http.rs`, 400 `invalid_cursor`);
- a thumbnail job's result names the `derivativeKey` (and, for its preview, the `previewKey`) its lease
  handed out (`worker_http.rs`, 422 `invalid_field`): a positive result for a job leased in this run carries
  those keys (leases are read as they are answered);
- the albums of one request have distinct `id`s, and no album is its own `parentId`
  (`client_http.rs`/catalog tests, 422 `invalid_field`);
- an upload's body is the bytes its `X-Content-SHA256` or `Content-Digest` names (both: the same digest), or,
  with neither, the bytes the sync declared; positive cases announce the SHA-256 of the body they carry
  (`client_http.rs`: 400 `invalid_header`, 422 `digest_mismatch` and `size_mismatch`, nothing stored);
- a resumable upload's creation (the upload route with `Upload-Complete`) names one digest of the whole file
  (`Repr-Digest` and `X-Content-SHA256` agree), whose `Upload-Length` is no shorter than the body and is the
  body's length when the body is the whole file, and within the largest upload the server takes: positive
  cases announce the body's digest in both, and its length (`resumable_http.rs`,
  `bad_input_is_refused_and_stores_nothing`: 400 `invalid_header`, 400 `inconsistent_upload_length`, 413).

One more repair is schemathesis's own: its coverage phase draws header values from A-Z, a-z and 0-9 only
(`coverage/_wire.py`, `ensure_valid_headers_schema`), so for a header whose pattern needs other characters
(`Content-Digest: sha-256=:…=:`) it finds no valid value and sends a placeholder (`0`) in a case it still
marks positive. An optional header whose value its own declared schema refuses is dropped from a positive
case: that value was never schema-valid.
"""

import base64
import hashlib
import json

import jsonschema_rs
import schemathesis

# A resumable upload's append (`PATCH /client/iphoto/uploads/{id}`) is raw bytes of the draft's own media type:
# sent as schemathesis sends `application/octet-stream`.
schemathesis.serializer.alias("application/partial-upload", "application/octet-stream")

SIGNED_CURSOR_LISTS = {"/my/photos/", "/my/photos", "/my/photos/albums/{albumId}"}

# Jobs leased during the run, by id.
LEASED = {}


def _positive(case):
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _header(headers, name):
    for key in list(headers or {}):
        if key.lower() == name:
            return key
    return None


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if not _positive(case):
        return
    method = case.operation.method.upper()
    path = case.operation.path
    if method == "GET" and path in SIGNED_CURSOR_LISTS and isinstance(case.query, dict):
        case.query.pop("cursor", None)
    if method == "POST" and path == "/client/iphoto/albums" and isinstance(case.body, dict):
        _distinct_albums(case.body.get("albums"))
    _drop_invalid_optional_headers(case)
    if method == "POST" and path == "/worker/jobs/{jobId}/result" and isinstance(case.body, dict):
        job = LEASED.get((case.path_parameters or {}).get("jobId"))
        if job is not None and job.get("kind") == "thumbnail":
            case.body["result"] = {
                "key": job.get("derivativeKey"),
                "contentType": "image/jpeg",
                "width": 1,
                "height": 1,
                "size": 1,
            }
            if job.get("previewKey"):
                case.body["result"]["preview"] = {
                    "key": job.get("previewKey"),
                    "contentType": "image/jpeg",
                    "width": 1,
                    "height": 1,
                    "size": 1,
                }
    if method == "POST" and path == "/client/iphoto/upload/{localIdentifier}":
        _announce_body_digest(case)


@schemathesis.hook
def after_call(ctx, case, response):
    if case.operation.path != "/worker/jobs/lease" or response.status_code != 200:
        return
    try:
        jobs = json.loads(response.content).get("jobs", [])
    except ValueError:
        return
    for job in jobs:
        if isinstance(job, dict) and "id" in job:
            LEASED[job["id"]] = job


def _drop_invalid_optional_headers(case):
    if not case.headers:
        return
    for parameter in case.operation.headers:
        definition = parameter.definition
        key = _header(case.headers, parameter.name.lower())
        if key is None or definition.get("required") or "schema" not in definition:
            continue
        if not jsonschema_rs.validator_for(definition["schema"]).is_valid(case.headers[key]):
            del case.headers[key]


def _announce_body_digest(case):
    body = case.body if isinstance(case.body, bytes) else b""
    if not isinstance(case.body, bytes):
        case.body = body
    digest = hashlib.sha256(body).digest()
    if case.headers is None:
        case.headers = {}
    hex_key = _header(case.headers, "x-content-sha256")
    digest_key = _header(case.headers, "content-digest")
    if digest_key is not None:
        case.headers[digest_key] = "sha-256=:" + base64.b64encode(digest).decode() + ":"
    if hex_key is not None or digest_key is None:
        case.headers[hex_key or "X-Content-SHA256"] = digest.hex()
    repr_key = _header(case.headers, "repr-digest")
    if repr_key is not None:
        case.headers[repr_key] = "sha-256=:" + base64.b64encode(digest).decode() + ":"
    length_key = _header(case.headers, "upload-length")
    if length_key is not None:
        case.headers[length_key] = str(len(body))


def _distinct_albums(albums):
    if not isinstance(albums, list):
        return
    seen = set()
    for index, album in enumerate(albums):
        if not isinstance(album, dict) or not isinstance(album.get("id"), str):
            continue
        album_id = album["id"]
        suffix = 0
        while album_id in seen:
            # Still 1 to 256 characters without NUL, as the schema wants.
            album_id = f"{album['id'][:240]}~{index}.{suffix}"
            suffix += 1
        album["id"] = album_id
        seen.add(album_id)
        if album.get("parentId") == album_id:
            album["parentId"] = None
