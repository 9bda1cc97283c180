"""The Quart-Trio front end: the app factory (``app``), Blueprints by audience (``routes``), and
beneath them request dependencies (``deps``), use cases (``usecases``) and wire shapes
(``presenters``, ``wire``, ``streams``). A new route goes in the Blueprint of its audience.
"""
