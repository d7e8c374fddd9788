# The project's Airflow image: the official Airflow 3 image, extended (as Airflow's docker-stack guide
# recommends) with the pinned requirements and the project's package, DAGs, plugins and SQL baked in.
# Built by `docker compose build`; every Airflow service in docker-compose.yaml runs this image.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# The same pinned set as `make venv` (apache-airflow 3.3.2 is pinned there too, so pip keeps the image's).
COPY --chown=airflow:0 requirements.txt /opt/cdp/requirements.txt
RUN pip install --no-cache-dir -r /opt/cdp/requirements.txt

COPY --chown=airflow:0 pyproject.toml /opt/cdp/pyproject.toml
COPY --chown=airflow:0 include /opt/cdp/include
COPY --chown=airflow:0 sql /opt/cdp/sql
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
# Editable, so that the package finds its sql/ folder beside it; no dependency is resolved here.
RUN pip install --no-cache-dir --no-deps -e /opt/cdp

ENV CDP_SQL_DIR=/opt/cdp/sql \
    CDP_HOME=/opt/airflow/cdp-state \
    CDP_DATA_HEALTH_DIR=/opt/airflow/data-health
