"""A network of clinics: pooled answers without pooling patients.

The statistics core (docs/network.md, "Statistics"):

- ``meta_analysis``: two-stage pooling of the sites' own estimates (random effects, REML, Hartung-Knapp,
  as R's metafor computes them);
- ``sufficient``: one-stage exact pooling of a linear model from each site's X'X, X'y, y'y and n, and the
  robust (HC or cluster) variance from a second exchange;
- ``site_weights``: the site-stratified IPTW weights a site computes before its contribution;
- ``complications``: complication rates pooled exactly (counts summed);
- ``small_cells``: what a site checks before anything leaves it (no statistic over 1 to 10 patients).

No function here reads or writes a file: the bundle, the coordinator's ledger and the DAG call them.
"""
