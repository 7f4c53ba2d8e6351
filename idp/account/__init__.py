"""End-user self-service: profile, language, email address (see views.py)."""
