"""The HTTP API: FastAPI routes, each a thin adapter over the service layer."""
