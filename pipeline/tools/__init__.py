"""Tools beside the stages, not stages themselves.

Operations: ``airflow_local`` (the DAGs in an embedded Airflow: ``make demo``, the DAG tests) and
``airflow_server`` (a local Airflow with its UI: ``make airflow``). Development: ``synthetic``
(seeded synthetic exports: ``synk generate``, the tests, the bench) and ``data_dictionary``
(docs/warehouse.md: ``synk docs``).
"""
