"""The migration phases: legacy-export audit and cleanup (phase 1), further platforms and KPI marts (phase 4)."""
