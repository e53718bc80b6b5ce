"""Store implementations: SQLite (embedded, the default) and PostgreSQL (several replicas).

`factory.store_from_url` picks one from ALERTBOT_DATABASE_URL; `migrate` holds the migration
runner both share, `urls` the URL helpers, `copy` the row copy between them.
"""
