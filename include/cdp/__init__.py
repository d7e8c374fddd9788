"""The nonprofit data platform's domain package.

Everything here runs without Airflow: sources, warehouse access, identity resolution, quality checks,
privacy and audit. DAG files under ``dags/`` only wire these pieces together.
"""

__version__ = "0.1.0"
