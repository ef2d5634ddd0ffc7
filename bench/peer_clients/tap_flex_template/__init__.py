"""A Flex tap as the singer-sdk cookiecutter template's REST + OAuth2 shape leaves it.

This is the "SDK defaults" peer of ``bench/peers.py``: what a user who ran the template and
filled in its TODOs for Flex would have, and nothing more (no pacing, no concurrency, no drift
defence, default message writer, default retries). It runs in its own venv with the pinned
singer-sdk (``bench/.venvs/sdk``), never in the project's.
"""
