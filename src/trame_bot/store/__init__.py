"""Persistence: models, the database handle, and one query module per concept.

Store functions add, select and flush; they never commit. Services own the transaction.
"""
