"""Status sources: fetching, parsing into `Snapshot`s, the service catalog, polling."""
