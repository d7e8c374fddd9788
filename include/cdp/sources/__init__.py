"""Sources: one folder per vendor (``cdp/sources/<vendor>/``) with its connector, its stream specs and
validators (``specs.py``), its SQL (``sql/``), its pool and its setup page (``SETUP.md``).

``cdp.sources.registry.SOURCES`` lists every source; ``cdp.sources.order`` orders their streams from the
dependencies each declares. Sources never import the sync engine (``cdp.sync``): the engine reads them.
"""
