"""The audit trail: signed, chained entries, the heads anchored outside the database, and the site key."""
