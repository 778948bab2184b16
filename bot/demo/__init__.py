"""`outagebot demo`: a real outage replayed offline (``replay``), from the payloads in ``data``."""
