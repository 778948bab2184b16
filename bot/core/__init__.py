"""Platform-neutral domain: no I/O, no chat libraries."""
