"""A local stand-in for every vendor system: a seeded data generator and an HTTP server.

``cdp.sandbox.generator.World`` builds the data and keeps the truth; ``cdp.sandbox.server.SandboxServer``
serves it through each vendor's documented API, with faults on demand.
"""
