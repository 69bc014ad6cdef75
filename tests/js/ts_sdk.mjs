// Every Workers KV call of the Cloudflare TypeScript SDK (npm `cloudflare`) against a
// Rumor node; prints one JSON object of results for the Python test to check.
// Env: RUMOR_BASE_URL (http://HOST:PORT/client/v4), RUMOR_API_TOKEN.
import Cloudflare from "cloudflare";

const client = new Cloudflare({
  apiToken: process.env.RUMOR_API_TOKEN,
  baseURL: process.env.RUMOR_BASE_URL,
  maxRetries: 0,
});
const account_id = "any-account";
const out = {};

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return { status: error.status, errors: error.errors };
  }
}

const ns = await client.kv.namespaces.create({ account_id, title: "ts-sdk" });
out.created = { title: ns.title, supports_url_encoding: ns.supports_url_encoding };
out.duplicate = await failure(client.kv.namespaces.create({ account_id, title: "ts-sdk" }));
const titles = [];
for await (const item of client.kv.namespaces.list({ account_id, per_page: 1000 })) {
  titles.push(item.title);
}
out.listed = titles.includes("ts-sdk");
out.got = (await client.kv.namespaces.get(ns.id, { account_id })).title;
out.renamed = (await client.kv.namespaces.update(ns.id, { account_id, title: "ts-sdk-2" })).title;

const namespace_id = ns.id;
await client.kv.namespaces.values.update("greeting", {
  // metadata as JSON text: the SDK sends an object as bracketed form fields (metadata[lang]).
  account_id, namespace_id, value: "hello", metadata: JSON.stringify({ lang: "en" }), expiration_ttl: 600,
});
await client.kv.namespaces.values.update("a/b c", { account_id, namespace_id, value: "slashed" });
const value = await client.kv.namespaces.values.get("greeting", { account_id, namespace_id });
out.value = await value.text();
out.slashed = await (await client.kv.namespaces.values.get("a/b c", { account_id, namespace_id })).text();
out.metadata = await client.kv.namespaces.metadata.get("greeting", { account_id, namespace_id });
out.bad_ttl = await failure(client.kv.namespaces.values.update("short", {
  account_id, namespace_id, value: "x", expiration_ttl: 10,
}));
out.missing = await failure(client.kv.namespaces.values.get("nope", { account_id, namespace_id }));

out.bulk_put = await client.kv.namespaces.bulkUpdate(namespace_id, {
  account_id,
  body: [
    { key: "bulk:1", value: "one" },
    { key: "bulk:2", value: "dHdv", base64: true, metadata: { n: 2 } },
  ],
});
out.bulk_get = await client.kv.namespaces.bulkGet(namespace_id, {
  account_id, keys: ["bulk:1", "bulk:2", "missing"], withMetadata: true,
});
const names = [];
for await (const key of client.kv.namespaces.keys.list(namespace_id, { account_id, prefix: "bulk:", limit: 10 })) {
  names.push(key.name);
}
out.keys = names;
out.bulk_delete = await client.kv.namespaces.bulkDelete(namespace_id, { account_id, body: ["bulk:1"] });
await client.kv.namespaces.values.delete("greeting", { account_id, namespace_id });
out.after_delete = await failure(client.kv.namespaces.values.get("greeting", { account_id, namespace_id }));
await client.kv.namespaces.delete(namespace_id, { account_id });
out.gone = await failure(client.kv.namespaces.get(namespace_id, { account_id }));
console.log(JSON.stringify(out));
