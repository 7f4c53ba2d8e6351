"""Domain logic with no Flask request in it: plain arguments in, domain exceptions out."""
