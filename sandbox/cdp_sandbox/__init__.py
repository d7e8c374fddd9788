"""A local stand-in for every vendor system: a seeded data generator and an HTTP server.

``cdp_sandbox.generator.World`` builds the data and keeps the truth; ``cdp_sandbox.server.SandboxServer``
serves it through each vendor's documented API, with faults on demand.
"""
