"""Retention: policies, incident holds, open-record limits, the purge and what it removes."""
