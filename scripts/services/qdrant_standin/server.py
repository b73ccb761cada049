#!/usr/bin/env python3
"""A Qdrant REST stand-in for machines that cannot run a Qdrant server.

It serves the part of Qdrant's REST API that `@qdrant/js-client-rest` uses for collections, payload
indexes and points, on top of `qdrant-client`'s local mode (`QdrantClient(path=DIR)`: numpy
brute-force search, points in SQLite, so data survives a restart). Request bodies are parsed and
results serialised with qdrant-client's own pydantic models, which are generated from Qdrant's
OpenAPI spec, so shapes match the real server. See docs/qdrant-standin.md for what is and is not
implemented.

    python server.py --host 127.0.0.1 --port 6333 --path ./qdrant-data

Prints `qdrant-standin listening on http://HOST:PORT` once it accepts connections (`--port 0` picks
a free port, and the line names it), and exits with status 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
import warnings
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version as package_version
from typing import Any, Callable, List, Optional, Union
from urllib.parse import parse_qs, unquote, urlsplit

# Local mode warns (once) that payload indexes have no effect and that it is not meant for big
# collections; the stand-in documents both, and its stdout must stay one line.
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

from pydantic import BaseModel, Field, TypeAdapter, ValidationError  # noqa: E402
from qdrant_client import QdrantClient  # noqa: E402
from qdrant_client.http import models  # noqa: E402
from qdrant_client.local.local_collection import LocalCollection  # noqa: E402

QDRANT_CLIENT_VERSION = package_version("qdrant-client")
STANDIN_VERSION = f"{QDRANT_CLIENT_VERSION}-standin"
PAYLOAD_SCHEMA_FILE = "standin_payload_schema.json"


class ApiError(Exception):
    """An error answered the way Qdrant answers it: {"status": {"error": message}} with a code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found_collection(name: str) -> ApiError:
    return ApiError(404, f"Not found: Collection `{name}` doesn't exist!")


def wrong_input(message: str) -> ApiError:
    return ApiError(400, message if message.startswith("Wrong input") else f"Wrong input: {message}")


# ---------------------------------------------------------------------------------------------
# Request models. Everything comes from qdrant-client's generated models, except the body of the
# legacy /points/search endpoints, which Qdrant 1.19 still serves but dropped from its OpenAPI spec
# (so qdrant-client no longer generates a model for it).


class LegacyNamedVector(BaseModel, extra="forbid"):
    name: str
    vector: Union[List[float], models.SparseVector]


class LegacySearchRequest(BaseModel, extra="forbid"):
    shard_key: Optional[models.ShardKeySelector] = None
    vector: Union[List[float], LegacyNamedVector]
    filter: Optional[models.Filter] = None
    params: Optional[models.SearchParams] = None
    limit: int
    offset: Optional[int] = None
    with_payload: Optional[models.WithPayloadInterface] = None
    with_vector: Optional[models.WithVector] = None
    score_threshold: Optional[float] = None


class LegacySearchRequestBatch(BaseModel, extra="forbid"):
    searches: List[LegacySearchRequest] = Field(...)


POINT_INSERT = TypeAdapter(models.PointInsertOperations)
POINTS_SELECTOR = TypeAdapter(models.PointsSelector)
POINT_ID = TypeAdapter(models.ExtendedPointId)


def parse(model: Any, body: Any) -> Any:
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(body)
        return model.model_validate(body)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
        )
        raise ApiError(400, f"Format error in JSON body: {details}") from None


def to_json(value: Any) -> Any:
    """Serialise qdrant-client models as the server does: unset optional fields are left out."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def query_flag(query: dict[str, list[str]], name: str, default: bool) -> bool:
    values = query.get(name)
    if not values:
        return default
    return values[-1].lower() not in ("false", "0", "no")


# ---------------------------------------------------------------------------------------------
# The store: local-mode client plus what local mode does not keep (payload index schemas).


# Local mode evaluates a payload filter point by point in Python (~20-40 ms for 1,000 points), which made filtered
# searches the stand-in's bottleneck. The mask of a filter only changes when the data does, so it is kept until the
# next write request: every request that is not a read invalidates the cache, before and after it runs. Reaches into
# local mode's internals, which the pinned qdrant-client version has.
_FILTER_MASKS: dict[tuple[int, str, Optional[str]], Any] = {}
_uncached_mask = LocalCollection._payload_and_non_deleted_mask


def invalidate_filter_masks() -> None:
    _FILTER_MASKS.clear()


def _cached_filter_mask(self: LocalCollection, payload_filter: Any, vector_name: Optional[str] = None) -> Any:
    if payload_filter is None:
        return _uncached_mask(self, payload_filter, vector_name)
    key = (id(self), payload_filter.model_dump_json(), vector_name)
    mask = _FILTER_MASKS.get(key)
    if mask is None:
        if len(_FILTER_MASKS) >= 1024:
            _FILTER_MASKS.clear()
        mask = _FILTER_MASKS[key] = _uncached_mask(self, payload_filter, vector_name)
    return mask.copy()


LocalCollection._payload_and_non_deleted_mask = _cached_filter_mask  # type: ignore[method-assign]


class Store:
    """All access to local mode goes through one lock: local mode is not thread-safe."""

    def __init__(self, path: str, fsync: bool = False) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.fsync = fsync
        self.lock = threading.Lock()
        self.client = QdrantClient(path=path, force_disable_check_same_thread=True)
        self.operation_id = 0
        self.vector_params: dict[str, Any] = {}
        self._relax_sync()
        self.schema_path = os.path.join(path, PAYLOAD_SCHEMA_FILE)
        self.payload_schema: dict[str, dict[str, dict[str, Any]]] = {}
        if os.path.exists(self.schema_path):
            with open(self.schema_path, "r", encoding="utf-8") as f:
                self.payload_schema = json.load(f)

    def _relax_sync(self) -> None:
        """Turn off SQLite's fsync on every point write, unless --fsync.

        Local mode commits each point on its own, and with fsync an upsert costs ~5 ms a point
        (1000 points: ~5 s instead of ~0.3 s). Without it every answered write is still in the
        database file, so data survives the process being killed; only a crash of the machine can
        lose the last writes. Reaches into local mode's internals, which the pinned version has.
        """
        if self.fsync:
            return
        local = getattr(self.client, "_client", None)
        for collection in getattr(local, "collections", {}).values():
            connection = getattr(getattr(collection, "storage", None), "storage", None)
            if connection is not None:
                connection.execute("PRAGMA synchronous=OFF")

    def close(self) -> None:
        with self.lock:
            self.client.close()

    def save_payload_schema(self) -> None:
        tmp = f"{self.schema_path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.payload_schema, f)
        os.replace(tmp, self.schema_path)

    def require(self, name: str) -> None:
        if not self.client.collection_exists(name):
            raise not_found_collection(name)

    def update_result(self, wait: bool) -> dict[str, Any]:
        # Local mode applies every write before it returns; `wait=false` still answers like the
        # server, which acknowledges before applying.
        self.operation_id += 1
        status = models.UpdateStatus.COMPLETED if wait else models.UpdateStatus.ACKNOWLEDGED
        return to_json(models.UpdateResult(operation_id=self.operation_id, status=status))

    def collection_info(self, name: str) -> dict[str, Any]:
        self.require(name)
        info = self.client.get_collection(name)
        schema: dict[str, models.PayloadIndexInfo] = {}
        for field, spec in self.payload_schema.get(name, {}).items():
            with_field = models.Filter(
                must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=field))]
            )
            points = self.client.count(name, count_filter=with_field, exact=True).count
            schema[field] = models.PayloadIndexInfo(
                data_type=spec["data_type"], params=spec.get("params"), points=points
            )
        info.payload_schema = schema
        return to_json(info)

    def create_collection(self, name: str, body: Any) -> bool:
        request: models.CreateCollection = parse(models.CreateCollection, body or {})
        if self.client.collection_exists(name):
            raise ApiError(409, f"Wrong input: Collection `{name}` already exists!")
        # Sharding, replication, HNSW, WAL, optimizer, quantization and strict-mode settings are
        # accepted and ignored: local mode is a single exact (brute-force) segment.
        self.client.create_collection(
            name,
            vectors_config=request.vectors if request.vectors is not None else {},
            sparse_vectors_config=request.sparse_vectors,
            metadata=request.metadata,
        )
        self._relax_sync()
        self.vector_params.pop(name, None)
        self.payload_schema.pop(name, None)
        self.save_payload_schema()
        return True

    def delete_collection(self, name: str) -> bool:
        existed = self.client.delete_collection(name)
        self.vector_params.pop(name, None)
        if self.payload_schema.pop(name, None) is not None:
            self.save_payload_schema()
        return existed

    def create_payload_index(self, name: str, body: Any, wait: bool) -> dict[str, Any]:
        self.require(name)
        request: models.CreateFieldIndex = parse(models.CreateFieldIndex, body)
        if request.field_schema is None:
            raise wrong_input("the stand-in needs `field_schema` to create a payload index")
        self.client.create_payload_index(name, request.field_name, request.field_schema)
        if isinstance(request.field_schema, BaseModel):
            params = request.field_schema
            spec = {
                "data_type": to_json(getattr(params, "type")),
                "params": to_json(params),
            }
        else:
            spec = {"data_type": to_json(request.field_schema)}
        self.payload_schema.setdefault(name, {})[request.field_name] = spec
        self.save_payload_schema()
        return self.update_result(wait)

    def delete_payload_index(self, name: str, field: str, wait: bool) -> dict[str, Any]:
        self.require(name)
        self.client.delete_payload_index(name, field)
        if self.payload_schema.get(name, {}).pop(field, None) is not None:
            self.save_payload_schema()
        return self.update_result(wait)

    def upsert(self, name: str, body: Any, wait: bool) -> dict[str, Any]:
        self.require(name)
        operation = parse(POINT_INSERT, body)
        points = operation.points if isinstance(operation, models.PointsList) else operation.batch
        self.client.upsert(
            name,
            points=points,
            wait=True,
            update_filter=operation.update_filter,
            update_mode=operation.update_mode,
        )
        return self.update_result(wait)

    def retrieve(self, name: str, body: Any) -> Any:
        self.require(name)
        request: models.PointRequest = parse(models.PointRequest, body)
        records = self.client.retrieve(
            name,
            ids=request.ids,
            with_payload=request.with_payload if request.with_payload is not None else True,
            with_vectors=request.with_vector if request.with_vector is not None else False,
        )
        return to_json(records)

    def get_point(self, name: str, raw_id: str) -> Any:
        self.require(name)
        point_id: Any = int(raw_id) if raw_id.isdigit() else raw_id
        records = self.client.retrieve(name, ids=[point_id], with_payload=True, with_vectors=True)
        if not records:
            raise ApiError(404, f"Not found: Point with id {raw_id} does not exists!")
        return to_json(records[0])

    def delete_points(self, name: str, body: Any, wait: bool) -> dict[str, Any]:
        self.require(name)
        selector = parse(POINTS_SELECTOR, body)
        self.client.delete(name, points_selector=selector, wait=True)
        return self.update_result(wait)

    @staticmethod
    def _payload_selector(request: Any) -> Any:
        if request.points is not None:
            return models.PointIdsList(points=request.points)
        if request.filter is not None:
            return models.FilterSelector(filter=request.filter)
        raise wrong_input("No filter or points provided")

    def set_payload(self, name: str, body: Any, wait: bool, overwrite: bool) -> dict[str, Any]:
        self.require(name)
        request: models.SetPayload = parse(models.SetPayload, body)
        selector = self._payload_selector(request)
        if overwrite:
            self.client.overwrite_payload(name, payload=request.payload, points=selector, wait=True)
        else:
            self.client.set_payload(
                name, payload=request.payload, points=selector, key=request.key, wait=True
            )
        return self.update_result(wait)

    def delete_payload(self, name: str, body: Any, wait: bool) -> dict[str, Any]:
        self.require(name)
        request: models.DeletePayload = parse(models.DeletePayload, body)
        selector = self._payload_selector(request)
        self.client.delete_payload(name, keys=request.keys, points=selector, wait=True)
        return self.update_result(wait)

    def clear_payload(self, name: str, body: Any, wait: bool) -> dict[str, Any]:
        self.require(name)
        selector = parse(POINTS_SELECTOR, body)
        self.client.clear_payload(name, points_selector=selector, wait=True)
        return self.update_result(wait)

    def scroll(self, name: str, body: Any) -> dict[str, Any]:
        self.require(name)
        request: models.ScrollRequest = parse(models.ScrollRequest, body or {})
        points, next_offset = self.client.scroll(
            name,
            scroll_filter=request.filter,
            limit=request.limit if request.limit is not None else 10,
            offset=request.offset,
            with_payload=request.with_payload if request.with_payload is not None else True,
            with_vectors=request.with_vector if request.with_vector is not None else False,
            order_by=request.order_by,
        )
        # The server always sends `next_page_offset`, null on the last page.
        return {"points": to_json(points), "next_page_offset": to_json(next_offset)}

    def count(self, name: str, body: Any) -> Any:
        self.require(name)
        request: models.CountRequest = parse(models.CountRequest, body or {})
        exact = request.exact if request.exact is not None else True
        return to_json(self.client.count(name, count_filter=request.filter, exact=exact))

    @staticmethod
    def _with_defaults(request: models.QueryRequest) -> models.QueryRequest:
        # The server's defaults: no payload, no vector, limit 10.
        return request.model_copy(
            update={
                "with_payload": request.with_payload if request.with_payload is not None else False,
                "with_vector": request.with_vector if request.with_vector is not None else False,
                "limit": request.limit if request.limit is not None else 10,
            }
        )

    def _check_dimension(self, name: str, request: models.QueryRequest) -> None:
        """Reject a dense query vector of the wrong size with the server's message.

        Local mode would otherwise fail inside numpy with a shape error.
        """
        query: Any = request.query
        if isinstance(query, models.NearestQuery):
            query = query.nearest
        if not (isinstance(query, list) and query and isinstance(query[0], float)):
            return
        if name not in self.vector_params:
            self.vector_params[name] = self.client.get_collection(name).config.params.vectors
        params: Any = self.vector_params[name]
        if isinstance(params, dict):
            params = params.get(request.using or "")
        elif request.using:
            return  # an unnamed-vector collection asked for a named vector: local mode says so
        if isinstance(params, models.VectorParams) and params.size != len(query):
            raise wrong_input(
                f"Vector dimension error: expected dim: {params.size}, got {len(query)}"
            )

    def query_batch(self, name: str, requests: List[models.QueryRequest]) -> List[models.QueryResponse]:
        self.require(name)
        for request in requests:
            if request.limit is not None and request.limit < 1:
                raise wrong_input(f"limit value {request.limit} is invalid. Must be 1 or larger.")
            self._check_dimension(name, request)
        return self.client.query_batch_points(name, requests=[self._with_defaults(r) for r in requests])

    def query(self, name: str, body: Any) -> Any:
        request: models.QueryRequest = parse(models.QueryRequest, body or {})
        return to_json(self.query_batch(name, [request])[0])

    def query_many(self, name: str, body: Any) -> Any:
        batch: models.QueryRequestBatch = parse(models.QueryRequestBatch, body)
        return to_json(self.query_batch(name, batch.searches))

    @staticmethod
    def _legacy_to_query(search: LegacySearchRequest) -> models.QueryRequest:
        if isinstance(search.vector, LegacyNamedVector):
            query: Any = search.vector.vector
            using: Optional[str] = search.vector.name
        else:
            query, using = search.vector, None
        return models.QueryRequest(
            query=query,
            using=using,
            filter=search.filter,
            params=search.params,
            limit=search.limit,
            offset=search.offset,
            with_payload=search.with_payload,
            with_vector=search.with_vector,
            score_threshold=search.score_threshold,
        )

    def search(self, name: str, body: Any) -> Any:
        search: LegacySearchRequest = parse(LegacySearchRequest, body)
        return to_json(self.query_batch(name, [self._legacy_to_query(search)])[0].points)

    def search_many(self, name: str, body: Any) -> Any:
        batch: LegacySearchRequestBatch = parse(LegacySearchRequestBatch, body)
        responses = self.query_batch(name, [self._legacy_to_query(s) for s in batch.searches])
        return [to_json(r.points) for r in responses]


# ---------------------------------------------------------------------------------------------
# Routing.

Handler = Callable[["Store", dict[str, str], Any, dict[str, list[str]]], Any]
ROUTES: list[tuple[str, re.Pattern[str], Handler, bool]] = []


def route(method: str, pattern: str, read_only: bool = False) -> Callable[[Handler], Handler]:
    """`read_only` routes leave the filter-mask cache valid; every other request invalidates it."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def register(handler: Handler) -> Handler:
        ROUTES.append((method, regex, handler, read_only or method == "GET"))
        return handler

    return register


@route("GET", "/collections")
def _list(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return to_json(store.client.get_collections())


@route("GET", "/collections/{name}")
def _info(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.collection_info(p["name"])


@route("GET", "/collections/{name}/exists")
def _exists(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return to_json(models.CollectionExistence(exists=store.client.collection_exists(p["name"])))


@route("PUT", "/collections/{name}")
def _create(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.create_collection(p["name"], body)


@route("DELETE", "/collections/{name}")
def _delete(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.delete_collection(p["name"])


@route("PUT", "/collections/{name}/index")
def _create_index(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.create_payload_index(p["name"], body, query_flag(q, "wait", False))


@route("DELETE", "/collections/{name}/index/{field}")
def _delete_index(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.delete_payload_index(p["name"], p["field"], query_flag(q, "wait", False))


@route("PUT", "/collections/{name}/points")
def _upsert(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.upsert(p["name"], body, query_flag(q, "wait", False))


@route("POST", "/collections/{name}/points", read_only=True)
def _retrieve(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.retrieve(p["name"], body)


@route("GET", "/collections/{name}/points/{id}")
def _get_point(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.get_point(p["name"], p["id"])


@route("POST", "/collections/{name}/points/delete")
def _delete_points(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.delete_points(p["name"], body, query_flag(q, "wait", False))


@route("POST", "/collections/{name}/points/payload")
def _set_payload(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.set_payload(p["name"], body, query_flag(q, "wait", False), overwrite=False)


@route("PUT", "/collections/{name}/points/payload")
def _overwrite_payload(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.set_payload(p["name"], body, query_flag(q, "wait", False), overwrite=True)


@route("POST", "/collections/{name}/points/payload/delete")
def _delete_payload(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.delete_payload(p["name"], body, query_flag(q, "wait", False))


@route("POST", "/collections/{name}/points/payload/clear")
def _clear_payload(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.clear_payload(p["name"], body, query_flag(q, "wait", False))


@route("POST", "/collections/{name}/points/scroll", read_only=True)
def _scroll(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.scroll(p["name"], body)


@route("POST", "/collections/{name}/points/count", read_only=True)
def _count(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.count(p["name"], body)


@route("POST", "/collections/{name}/points/query", read_only=True)
def _query(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.query(p["name"], body)


@route("POST", "/collections/{name}/points/query/batch", read_only=True)
def _query_batch(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.query_many(p["name"], body)


@route("POST", "/collections/{name}/points/search", read_only=True)
def _search(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.search(p["name"], body)


@route("POST", "/collections/{name}/points/search/batch", read_only=True)
def _search_batch(store: Store, p: dict[str, str], body: Any, q: dict[str, list[str]]) -> Any:
    return store.search_many(p["name"], body)


# Plain-text probes, as the server answers them.
PROBES = {
    "/healthz": "healthz check passed",
    "/livez": "healthz check passed",
    "/readyz": "all shards are ready",
}


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as undici expects
    server_version = "qdrant-standin"
    store: Store  # set on the class by main()
    log_requests = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.log_requests:
            sys.stderr.write(f"qdrant-standin: {self.address_string()} {format % args}\n")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode("utf-8"), "application/json")

    def _dispatch(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = parse_qs(url.query)
        raw = self._read_body()

        if self.command in ("GET", "HEAD") and path in PROBES:
            self._send(200, PROBES[path].encode("utf-8"), "text/plain; charset=utf-8")
            return
        if self.command in ("GET", "HEAD") and path == "/":
            self._send_json(
                200, {"title": "qdrant - vector search engine", "version": STANDIN_VERSION}
            )
            return

        try:
            handler, params, read_only = self._match(path)
            try:
                body = json.loads(raw) if raw.strip() else None
            except json.JSONDecodeError as error:
                raise ApiError(400, f"Format error in JSON body: {error}") from None
            with self.store.lock:
                if not read_only:
                    invalidate_filter_masks()
                try:
                    result = handler(self.store, params, body, query)
                finally:
                    if not read_only:
                        invalidate_filter_masks()
        except ApiError as error:
            self._send_error(error.status, error.message, started)
            return
        except KeyError as error:  # local mode: a point named in a payload/vector update is missing
            missing = error.args[0] if error.args else ""
            self._send_error(404, f"Not found: No point with id {missing} found", started)
            return
        except (ValueError, TypeError) as error:
            # local mode raises ValueError with the server's own wording ("Wrong input: Vector
            # dimension error: expected dim: 384, got 3 ...") for bad requests
            self._send_error(400, wrong_input(str(error)).message, started)
            return
        except NotImplementedError as error:
            self._send_error(501, f"Not implemented in the qdrant stand-in: {error}", started)
            return
        except Exception as error:  # noqa: BLE001 - answer 500 like the server, keep serving
            traceback.print_exc(file=sys.stderr)
            self._send_error(500, f"Service internal error: {error}", started)
            return
        self._send_json(
            200, {"result": result, "status": "ok", "time": time.monotonic() - started}
        )

    def _match(self, path: str) -> tuple[Handler, dict[str, str], bool]:
        allowed = False
        for method, regex, handler, read_only in ROUTES:
            found = regex.match(path)
            if not found:
                continue
            if method == self.command:
                params = {k: unquote(v) for k, v in found.groupdict().items()}
                return handler, params, read_only
            allowed = True
        if allowed:
            raise ApiError(405, f"Method {self.command} on {path} is not served by the qdrant stand-in")
        raise ApiError(404, f"Not found: the qdrant stand-in does not serve {self.command} {path}")

    def _send_error(self, status: int, message: str, started: float) -> None:
        self._send_json(
            status, {"status": {"error": message}, "time": time.monotonic() - started}
        )

    do_GET = _dispatch
    do_HEAD = _dispatch
    do_PUT = _dispatch
    do_POST = _dispatch
    do_DELETE = _dispatch
    do_PATCH = _dispatch


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Qdrant REST stand-in on qdrant-client local mode")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333, help="0 picks a free port")
    parser.add_argument("--path", required=True, help="storage directory (created if missing)")
    parser.add_argument("--log-requests", action="store_true", help="access log on stderr")
    parser.add_argument(
        "--fsync",
        action="store_true",
        help="fsync every point write (survives machine crashes; ~5 ms a point)",
    )
    args = parser.parse_args(argv)

    try:
        store = Store(args.path, fsync=args.fsync)
    except RuntimeError as error:  # storage folder locked by another process
        print(f"qdrant-standin: {error}", file=sys.stderr)
        return 1
    RequestHandler.store = store
    RequestHandler.log_requests = args.log_requests
    try:
        server = Server((args.host, args.port), RequestHandler)
    except OSError as error:  # port taken, address not available
        print(f"qdrant-standin: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        store.close()
        return 1

    def stop(_signum: int, _frame: Any) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run on this (main) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    host, port = server.server_address[:2]
    print(f"qdrant-standin listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
