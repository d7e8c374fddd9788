"""Data quality checks that run in the warehouse: daily count diffs and grouped data alerts."""
