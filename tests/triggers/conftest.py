from crm_world import crm_sandbox, crm_world, synced  # noqa: F401 - fixtures shared with the other phase
