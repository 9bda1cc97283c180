"""``make chaos``: the fault suite. Each scenario breaks a real server process (or its database,
or its sockets) on loopback, under load, and prints what held: see docs/reliability.md."""
