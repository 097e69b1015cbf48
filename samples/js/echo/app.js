// `js-echo` (componentize-js, WASIp2): any request gets 200 `text/plain`.
//
// * `?env=NAME`: the body is the value of environment variable NAME, or 404 `NAME is not set\n`.
// * otherwise: the request body, echoed back byte for byte.

import { getEnvironment } from "wasi:cli/environment@0.2.10";

const TEXT = { "content-type": "text/plain" };

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const name = new URL(request.url).searchParams.get("env");
  if (name !== null) {
    // Read at request time: the module's top level runs once, when the component is built.
    const entry = getEnvironment().find(([key]) => key === name);
    if (entry === undefined) {
      return new Response(`${name} is not set\n`, { status: 404, headers: TEXT });
    }
    return new Response(entry[1], { status: 200, headers: TEXT });
  }
  const body = await request.arrayBuffer();
  return new Response(body, { status: 200, headers: TEXT });
}
