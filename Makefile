# Two commands for a new user: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLUSTER_STAMP := $(VENV)/.cluster-installed
SYNK_HOME ?= $(CURDIR)/data
export SYNK_HOME
DEMO_DROP := $(SYNK_HOME)/landing/demo-site01-2026q4
# A second clinic whose BoNT patients face "surgery or more injections?" (their scores drive surgery).
DEMO_DECISION_DROP := $(SYNK_HOME)/landing/demo-site02-2026q4

.PHONY: setup chromium r cluster-packages demo network-demo test test-server crosscheck test-cluster airflow cluster lint suites bench clean-data

# Creates .venv and installs the project, and installs Debian's Chromium (it prints the report's PDF and
# the tests open the report in it) when it is missing; does nothing while both are up to date.
setup: $(STAMP) chromium

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium (headless PDF printing of the report)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; \
	else \
		echo "Install Chromium (the 'chromium' package of your system): the report's PDF is printed with it." >&2; exit 1; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/synk generate --out $(DEMO_DROP) --patients 400 --seed 2026 --site site01 --complications --synergy 3
	$(BIN)/synk generate --out $(DEMO_DECISION_DROP) --patients 300 --seed 2026 --site site02 --complications --surgery-decision 8
	$(BIN)/python -m pipeline.tools.airflow_local --home $(SYNK_HOME)
	@# What needs attention, the drops, the quarantine and the warehouse's counts (the ledger: synk status).
	@$(BIN)/synk status --home $(SYNK_HOME) | awk '/^Needs attention:/ {told = 1} /^Drops:/ && !told {print "Needs attention: nothing (no load went wrong)."; print ""} /^(Load ledger|Data home):/ {skip = 1} /^$$/ {skip = 0} !skip && !/^GX Data Docs/' | cat -s
	@echo ""
	@echo "Report:    $$(ls -d $(SYNK_HOME)/published/*/report.html $(SYNK_HOME)/published/provisional/*/report.html 2>/dev/null | tail -n 1)"
	@echo "           (PROVISIONAL: the quarter under way; published/index.html lists a quarter once it has ended)"
	@echo "Query the latest model run with the DuckDB CLI (1.5, as statisticians' tools may be; benefit: above 0 is better):"
	@echo "  $(BIN)/duckdb -readonly $(SYNK_HOME)/warehouse/outcomes.duckdb \"SELECT method, outcome, round(benefit, 1) AS benefit, round(benefit_ci_low, 1) AS ci_low, round(benefit_ci_high, 1) AS ci_high, n_treated, n_control FROM model_estimates WHERE run_id = (SELECT run_id FROM model_runs ORDER BY started_at DESC LIMIT 1) AND contrast = 'combined_vs_single' AND timepoint = '12m' ORDER BY outcome, method\""

# Worker processes (one per core, 2 to 4), each taking whole test files (module fixtures are built once).
# The real Airflow server test (about 90 s on one core) runs apart, in `make test-server`: the suite
# stays under ten minutes on two cores, and the DAGs still run for real in it (dag.test() on SQLite).
TEST_WORKERS := $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; [ $$n -lt 2 ] && n=2; echo $$n)
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not server and not crosscheck and not cluster"

# Only the tests that start a real Airflow server on loopback (`make test` leaves them out).
test-server: setup
	$(BIN)/python -m pytest -m server

# R and the reference packages the cross-check refits with (Debian's, as Chromium above); nothing
# when they are all there. R is not a dependency of the platform, only of `make crosscheck`.
R_DEBS := r-base-core r-cran-sandwich r-cran-lme4 r-cran-clubsandwich r-cran-survival r-cran-ordinal \
	r-cran-mice r-cran-metafor r-cran-mass r-cran-jsonlite
R_LIBRARIES := sandwich lme4 clubSandwich survival ordinal mice metafor MASS jsonlite
r:
	@if command -v Rscript >/dev/null 2>&1 && Rscript -e 'for (p in strsplit("$(R_LIBRARIES)", " ")[[1]]) library(p, character.only = TRUE)' >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "Installing R and the reference packages (Debian's) for the cross-check"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(R_DEBS); \
	else \
		echo "Install R and the packages $(R_LIBRARIES): the cross-check refits every estimate with them." >&2; exit 1; \
	fi

# Every estimate the platform publishes refitted by R's reference implementations (docs/crosscheck.md):
# the demo's data and three generated sites in one home, each within 1e-6 (closed forms) or 1e-4
# (iterative fits). A few minutes on two cores; the homes and the table of the largest differences
# stay in $(CROSSCHECK_DIR).
CROSSCHECK_DIR ?= $(CURDIR)/build/crosscheck
crosscheck: setup r
	rm -rf $(CROSSCHECK_DIR) && mkdir -p $(CROSSCHECK_DIR)
	SYNK_CROSSCHECK_DIR=$(CROSSCHECK_DIR) $(BIN)/python -m pytest -m crosscheck tests/crosscheck tests/network -q
	@cat $(CROSSCHECK_DIR)/largest_differences.md

# The department server of docker-compose.yml without containers (pipeline/tools/airflow_cluster.py):
# Debian's PostgreSQL and Redis on loopback, CeleryExecutor with two workers, the three DAGs end to
# end on it, a worker killed mid-load (6 to 10 minutes on two cores). CI runs it after `make test`.
test-cluster: setup cluster-packages $(CLUSTER_STAMP)
	$(BIN)/python -m pytest -m cluster

# The same cluster, kept running with the data home until Ctrl-C; the DAGs start paused, as in compose.
CLUSTER_PORT ?= 8781
cluster: setup cluster-packages $(CLUSTER_STAMP)
	$(BIN)/python -m pipeline.tools.airflow_cluster --home $(SYNK_HOME) --port $(CLUSTER_PORT)

# The cluster's Python parts (the Celery provider, psycopg2, asyncpg: the `cluster` extra), pinned.
$(CLUSTER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,cluster]"
	touch $(CLUSTER_STAMP)

# Debian's PostgreSQL and Redis (the cluster's metadata database and broker), when either is missing.
cluster-packages:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's postgresql and redis-server (the cluster's database and broker)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends postgresql redis-server; \
	else \
		echo "Install PostgreSQL (15 or newer) and Redis (7): the cluster runs on them." >&2; exit 1; \
	fi

# A local Airflow on loopback (scheduler, DAG processor, triggerer, API server and UI) with the
# project's DAGs and data home; prints the URL and where the admin password is. Ctrl-C stops it.
AIRFLOW_PORT ?= 8780
airflow: setup
	$(BIN)/python -m pipeline.tools.airflow_server --home $(SYNK_HOME) --port $(AIRFLOW_PORT)

lint: setup
	$(BIN)/ruff check .

# Wall time, peak memory and rows/s of every stage from 1,000 to 50,000 patients (about 15 minutes);
# writes bench/results.md.
bench: setup
	$(BIN)/python bench/run.py --sizes 1000 10000 50000

# Regenerate the GX suites in expectations/ from pipeline/contract.py.
suites: setup
	$(BIN)/python -m pipeline.validation.suites

clean-data:
	rm -rf $(SYNK_HOME)

# A network of five clinics (docs/network.md): each loaded by its own synk run, the exchange simulated by
# files between their data homes and a coordinator's, the network's report written. The clinics fit the
# network's methods only (ancova, iptw; models.json), so the demo takes minutes, not an hour.
NETWORK_DIR ?= /tmp/synk-network-demo
network-demo: setup
	rm -rf $(NETWORK_DIR)
	$(BIN)/synk generate --network 5 --out $(NETWORK_DIR)/clinics --seed 2026
	for clinic in $(NETWORK_DIR)/clinics/clinic*/; do \
		echo '{"methods": ["unadjusted", "ancova", "iptw"]}' > $$clinic/models.json; \
		$(BIN)/synk run --home $$clinic || exit 1; \
	done
	$(BIN)/synk network simulate --sites $(NETWORK_DIR)/clinics/clinic*/ --coordinator $(NETWORK_DIR)/coordinator
