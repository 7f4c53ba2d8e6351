"""The demo portal served by `make run` on http://localhost:8080 (`python -m demo`)."""

from demo.portal import create_app

__all__ = ["create_app"]
