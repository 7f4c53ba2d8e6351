"""Hosted pages a person walks through, each a small explicit state machine.

One naming rule: ``<flow>.py`` holds a flow's logic (states, transitions; no
blueprint) and ``<flow>_views.py`` its thin blueprint, e.g. ``registration.py``
+ ``registration_views.py``. A journey whose logic is all in services/ has only
its ``_views`` module (``recovery_views.py``, ``invitation_views.py``); one with
states but whose pages live elsewhere has only ``<flow>.py`` (``logout.py``).
Shared by the views, not flows: ``base.py`` (the flow store), ``password_form.py``
(the set-password form), ``signup_messages.py`` (field error messages) and
``throttling.py`` (per-IP limits of the POSTs).
"""
