"""The Quart-Trio front end: routes (``app``), pages, sockets, and beneath them request
dependencies (``deps``), use cases (``usecases``) and wire shapes (``presenters``, ``wire``).
"""
