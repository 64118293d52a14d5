"""The HTTP API every daemon serves: health, status, Prometheus metrics, signed writes."""
