"""Source connectors: one module per vendor, each written against the vendor's real API.

``cdp.sources.registry.STREAMS`` maps a source name to a factory of its streams.
"""
