"""The database: engines and sessions, the tables, advisory locks, and the schema's migrations."""
