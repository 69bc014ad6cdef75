"""The HTTP room, on aiohttp: ``gateway`` (the app, its middleware, namespaces
and account routes), ``values`` (keys, values and bulk routes), ``request``
(Cloudflare's envelope and request reading), ``guard`` (cross-site and host
checks), ``workers_binding`` (the KV binding workerd calls) and ``bulk_get``.
It imports neither the gRPC room, the console nor the driver."""
