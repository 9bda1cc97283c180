"""The engine: pure state machines, the actors around them, the supervisor and the broker.

Imports nothing from ``storage`` or ``web``; storage is reached through the ports of ``store``.
"""
