"""A local stand-in for every vendor system: a seeded data generator and an HTTP server. A development
tool, not the product: installed by ``make venv``, never in the production image, never imported by
``include/cdp``, ``dags`` or ``plugins``.

``cdp_sandbox.generator.World`` builds the data and keeps the truth; ``cdp_sandbox.server.SandboxServer``
serves it through each vendor's documented API, with faults on demand. Each vendor is one module (its
data, its API, its credential and connection settings) and one line in ``cdp_sandbox.vendors``; the
people every vendor shares are in ``cdp_sandbox.core``.

Layers, each importing only those above it: ``tables``/``names``/``people``/``faults``/``formats`` →
``core`` → ``apis`` (shared plumbing) → the vendor modules → ``vendors`` (the registry) → ``generator`` →
``server``/``legacy``/``truth``/``processes`` (the local stack's supervision) → ``devserver`` → ``commands``
(the ``cdp`` sub-commands).
"""
