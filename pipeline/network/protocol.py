"""What the network agrees before any site computes (docs/network.md, "The protocol"): the bundle's format
and version, the comparisons, the design's common columns, the synergy pair, and the limits on rounds.

Fixed here, not by a first exchange, so that every site's statistics are over the same columns: the
network's ANCOVA is deliberately lean (the group and the baseline value, with site fixed effects), since
every parameter costs ten rows at the smallest site (``small_cells.ROWS_PER_PARAMETER``).
"""

from __future__ import annotations

from pipeline.models.design_matrix import COMBINED_VS_SINGLE, Contrast
from pipeline.models.pairs import Pair

FORMAT = "synk-network-bundle"
VERSION = 1
REQUEST_FORMAT = "synk-network-request"
ANSWER_FORMAT = "synk-network-answer"

# The comparisons every site computes (the platform's own names, design_matrix.define_contrasts).
CONTRASTS = (
    Contrast(COMBINED_VS_SINGLE),
    Contrast("BTX+PT_vs_BTX", frozenset({"BTX+PT"}), frozenset({"BTX"}), "BTX+PT", "BTX"),
)
# The network's ANCOVA: change = intercept + site + these columns (common slopes).
ANCOVA_COLUMNS = ("treated", "baseline_value")
# Site-stratified IPTW: the weighted difference in mean change, the propensity on these predictors.
IPTW_COLUMNS = ("treated",)
PROPENSITY_PREDICTORS = ("baseline_value",)
# The synergy the platform tests (pipeline/models/synergy.py): PT and SN added together on BTX.
SYNERGY = Pair("PT", "SN", "BTX")
SYNERGY_COLUMNS = ("treated", "with_b", "interaction", "baseline_value")  # treated: has A; with_b: has B
# Which coefficient each kind of model reports.
ESTIMATED = {"ancova": "treated", "iptw": "treated", "synergy": "interaction"}
# Two-stage: the site's own estimates of these methods (model_estimates).
TWO_STAGE_METHODS = ("ancova", "iptw")

# Rounds: a bundle is answered at most once (one second exchange: the robust variance), and a site answers
# at most this many requests a quarter, whatever they ask (repeated queries are how DataSHIELD's individual
# data were reconstructed).
MAX_ANSWERS_PER_BUNDLE = 1
MAX_REQUESTS_PER_QUARTER = 4
MIN_SITES_FOR_REQUEST = 3  # with two sites the request's (X'WX)^-1 would give away the other site's X'WX

# The stages' flag: where one-stage and two-stage differ by more than this many SEs (the larger SE).
STAGES_DIFFER_SE = 0.25

# Responders: the platform's threshold (yardsticks.responder_threshold), with the baseline SD agreed by the
# network where the threshold is computed from one (a site's own SD would give every site another threshold).
NETWORK_BASELINE_SD = {"sunnybrook_composite": 20.0}
