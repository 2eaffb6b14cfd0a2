# The department server's image: the official Airflow image of the pinned version, with the
# project and its pinned dependencies, and Debian's Chromium for the report's PDF.
# Built by docker-compose.yml; the version must match apache-airflow in constraints.txt (a test checks).
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

USER airflow
WORKDIR /opt/synk
COPY --chown=airflow:root pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:root pipeline ./pipeline
COPY --chown=airflow:root sql ./sql
COPY --chown=airflow:root expectations ./expectations
COPY --chown=airflow:root dags ./dags
# Editable: the pipeline reads sql/ and expectations/ beside its package. Airflow itself stays at
# the image's version (it is pinned to the same one in constraints.txt).
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -c constraints.txt -e .
WORKDIR /opt/airflow
