"""A synthetic network of clinics (``synk generate --network K --out DIR``): K sites of different sizes
and true effects, each one drop in its own data home's landing (DIR/<site>/landing/<drop>/), each site's
truth in its drop's manifest. The network's synergy study makes BTX, BTX+PT, BTX+SN and BTX+PT+SN common
(as a network would when it sets out to answer that question), and selective neurectomy common enough
that its complications can be counted at each site."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.tools.synthetic import SyntheticParameters, generate_drop
from pipeline.tools.synthetic_complications import DEMO_COMPLICATIONS

# Shares among the combined (synthetic.COMBINED: BTX+PT, BTX+MY, BTX+PT+MY, BTX+PT+SN, BTX+SN).
NETWORK_COMBINED_MIX = (0.34, 0.06, 0.06, 0.27, 0.27)
EFFECT_SPREAD = 1.5  # SD of the sites' true combined effects around the network's (composite points)
SYNERGY = 3.0


def site_sizes(sites: int, smallest: int, largest: int) -> list[int]:
    return [round(float(v)) for v in np.linspace(smallest, largest, sites)]


def generate_network(
    out: Path,
    sites: int,
    seed: int = 2026,
    smallest: int = 200,
    largest: int = 600,
    synergy: float = SYNERGY,
    sizes: list[int] | None = None,
    combined_mix: tuple[float, ...] | None = NETWORK_COMBINED_MIX,
) -> list[dict[str, object]]:
    """Write each site's drop; return one line per site (code, home, patients, true combined effect).
    ``combined_mix`` None: the single clinic's mix of combinations (synthetic.COMBINED_P)."""
    rng = np.random.default_rng(seed)
    sizes = sizes or site_sizes(sites, smallest, largest)
    written = []
    for index, patients in enumerate(sizes, start=1):
        code = f"clinic{index:02d}"
        effect = float(8.0 + rng.normal(0, EFFECT_SPREAD))
        params = replace(
            SyntheticParameters(),
            combined_effect=effect,
            synergy_pt_sn_on_btx=synergy,
            complications=DEMO_COMPLICATIONS,
            combined_mix=combined_mix,
        )
        home = Path(out) / code
        generate_drop(
            home / "landing" / f"{code}-drop1", patients=patients, seed=seed + index, site=code, params=params
        )
        written.append({"site": code, "home": str(home), "patients": patients, "combined_effect": round(effect, 3)})
    (Path(out) / "network.json").write_text(json.dumps({"sites": written}, indent=1) + "\n", encoding="utf-8")
    return written
