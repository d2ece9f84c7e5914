"""Telling hosts that their visitor arrived: the outbox, the messages, and their delivery."""
