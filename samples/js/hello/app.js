// `js-hello` (componentize-js, WASIp2): 200 `text/plain` `Hello from wisp!\n` for any request.
// StarlingMonkey serves the exported `wasi:http/incoming-handler` through the `fetch` event.

addEventListener("fetch", (event) => {
  event.respondWith(
    new Response("Hello from wisp!\n", {
      status: 200,
      headers: { "content-type": "text/plain" },
    }),
  );
});
