"""PostgreSQL: verb-named queries, one crossing into asyncio per use case, migrations, and an
embedded server for ``make serve``. Imports the engine's values and ports, nothing from ``web``.
"""
