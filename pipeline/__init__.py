"""Outcomes-research pipeline for facial synkinesis clinics.

The data walks one way: landing -> archive -> screening -> validation -> staging store ->
warehouse build -> published warehouse -> models -> report. Each stage is a module here,
usable without Airflow; the DAGs in ``dags/`` only wire them together.
"""

__version__ = "0.1.0"
