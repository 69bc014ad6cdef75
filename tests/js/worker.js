// The test Worker: runs one KV operation per request on env.KV and answers JSON.
// POST {op, key?, keys?, value?, kind?, options?} ->
//   {ok: true, result} or {ok: false, error: String(error)}.
function encodeValue(value, kind) {
  if (kind === "arrayBuffer") return new TextEncoder().encode(value).buffer;
  if (kind === "stream") {
    const bytes = new TextEncoder().encode(value);
    const half = Math.floor(bytes.length / 2);
    return new ReadableStream({
      start(controller) {
        controller.enqueue(bytes.slice(0, half));
        controller.enqueue(bytes.slice(half));
        controller.close();
      },
    });
  }
  return value;
}

async function decodeValue(value, type) {
  if (value === null) return null;
  if (type === "arrayBuffer") return { arrayBuffer: new TextDecoder().decode(value) };
  if (type === "stream") return { stream: await new Response(value).text() };
  return value;
}

export default {
  async fetch(request, env) {
    const body = await request.json();
    const options = body.options;
    try {
      let result = null;
      switch (body.op) {
        case "put":
          await env.KV.put(body.key, encodeValue(body.value, body.kind), options);
          break;
        case "get":
          result = await decodeValue(await env.KV.get(body.key, options), options?.type);
          break;
        case "getWithMetadata": {
          const found = await env.KV.getWithMetadata(body.key, options);
          result = {
            value: await decodeValue(found.value, options?.type),
            metadata: found.metadata,
          };
          break;
        }
        case "bulkGet":
          result = Object.fromEntries(await env.KV.get(body.keys, options));
          break;
        case "bulkGetWithMetadata":
          result = Object.fromEntries(await env.KV.getWithMetadata(body.keys, options));
          break;
        case "list":
          result = await env.KV.list(options);
          break;
        case "delete":
          await env.KV.delete(body.key);
          break;
        default:
          throw new Error(`unknown op ${body.op}`);
      }
      return Response.json({ ok: true, result });
    } catch (error) {
      return Response.json({ ok: false, error: String(error) });
    }
  },
};
