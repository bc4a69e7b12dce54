"""Operating the service: partner keys (partners), the access log (access_log), Prometheus metrics (metrics)."""
