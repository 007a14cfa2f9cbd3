"""Crawlers: fetch funding opportunities from public sources and normalise them.

The package knows nothing of Flask or the store: each source module turns pages into
``NormalizedOpportunity`` records and hands them to a sink supplied by the caller.
"""
