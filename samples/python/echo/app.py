"""`py-echo` (componentize-py, WASIp2): any request gets 200 `text/plain`.

* `?env=NAME`: the body is the value of environment variable NAME, or 404 `NAME is not set\n`.
* otherwise: the request body, echoed back byte for byte as it streams in.
"""

import os
from urllib.parse import parse_qs, urlsplit

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.streams import InputStream, OutputStream, StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

READ_CHUNK = 64 * 1024
# `blocking-write-and-flush` takes at most 4096 bytes per call (wasi:io/streams).
WRITE_CHUNK = 4096


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        query = parse_qs(urlsplit(request.path_with_query() or "/").query, keep_blank_values=True)
        names = query.get("env")
        if names:
            name = names[0]
            value = os.environ.get(name)
            if value is None:
                respond(response_out, 404, f"{name} is not set\n".encode())
            else:
                respond(response_out, 200, value.encode())
            return

        incoming = request.consume()
        response = text_response(200)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with incoming.stream() as source, body.write() as sink:
            copy(source, sink)
        OutgoingBody.finish(body, None)


def text_response(status: int) -> OutgoingResponse:
    response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
    response.set_status_code(status)
    return response


def respond(response_out: ResponseOutparam, status: int, content: bytes) -> None:
    response = text_response(status)
    body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with body.write() as sink:
        write_all(sink, content)
    OutgoingBody.finish(body, None)


def copy(source: InputStream, sink: OutputStream) -> None:
    while True:
        try:
            chunk = source.blocking_read(READ_CHUNK)
        except Err as error:
            if isinstance(error.value, StreamError_Closed):
                return
            raise
        write_all(sink, chunk)


def write_all(sink: OutputStream, content: bytes) -> None:
    for start in range(0, len(content), WRITE_CHUNK):
        sink.blocking_write_and_flush(content[start : start + WRITE_CHUNK])
