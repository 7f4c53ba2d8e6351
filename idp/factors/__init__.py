"""Ways of proving who you are, behind one interface (see base.py)."""
