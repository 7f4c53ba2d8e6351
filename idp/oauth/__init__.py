"""The Authlib authorization server: setup, grants, claims, keys, endpoints."""
