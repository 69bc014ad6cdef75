"""The HTTP room, on aiohttp: ``gateway`` (the app, its namespaces and account
routes), ``entry`` (what every request goes through), ``values`` (keys, values
and bulk routes), ``request`` (Cloudflare's envelope, reading a request),
``body`` (reading a body under the upload budget), ``session_header``,
``guard`` (cross-site and host checks), ``workers_binding`` (the KV binding
workerd calls) and ``bulk_get``. It imports neither the gRPC room, the console
nor the driver."""
