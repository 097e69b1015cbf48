// `js-hello-handler` (componentize-js, WASIp2): 200 `text/plain` `Hello from wisp!\n` for any
// request, written against `wasi:http/incoming-handler` itself rather than StarlingMonkey's
// `fetch` event. Exporting `incomingHandler` turns the fetch event off, and unlike it (whose
// second `respondWith` on one instance throws "FetchEvent#respondWith can't be called twice on
// the same event") this handler can serve many requests in turn on one instance: the JavaScript
// guest to run with instance reuse.

import { Fields, OutgoingBody, OutgoingResponse, ResponseOutparam } from "wasi:http/types@0.2.10";

const BODY = new TextEncoder().encode("Hello from wisp!\n");
const TEXT_PLAIN = new TextEncoder().encode("text/plain");

export const incomingHandler = {
  handle(_request, responseOut) {
    const response = new OutgoingResponse(Fields.fromList([["content-type", TEXT_PLAIN]]));
    response.setStatusCode(200);
    const body = response.body();
    ResponseOutparam.set(responseOut, { tag: "ok", val: response });
    const stream = body.write();
    stream.blockingWriteAndFlush(BODY);
    // The stream is a child of the body: it must be gone before the body is finished.
    stream[Symbol.dispose]();
    OutgoingBody.finish(body, undefined);
  },
};
