"""Hosted pages a person walks through, each a small explicit state machine."""
