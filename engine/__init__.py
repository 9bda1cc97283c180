"""The engine: values (``values``), storage ports (``store``), pure state machines and the actors
around them, the supervisor and the broker. Imports nothing from ``storage`` or ``web``.
"""
