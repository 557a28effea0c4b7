"""The applications over the core: the `digits` CLI, the HTTP server with its drawing page, and reports."""
