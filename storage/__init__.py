"""PostgreSQL: verb-named queries, one crossing into asyncio per use case, migrations, and an
embedded server for ``make serve``. Imports the engine's values and ports, nothing from ``web``.
"""

from storage.aioloop import install as _install_loop_patch

# every use of asyncio in the server goes through this package (asyncpg, nats-py): the loop
# that runs them is made to run what is ready in one Trio turn (storage/aioloop.py)
_install_loop_patch()
