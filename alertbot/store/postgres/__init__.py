"""PostgreSQL backend (asyncpg)."""
