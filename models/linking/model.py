"""A trained Fellegi-Sunter linkage model: m and u per comparison level, and the match rate.

The match weight of a pair is log2 of its Bayes factor, the sum over comparisons of
log2(m/u) of the level it takes (Fellegi & Sunter, "A Theory for Record Linkage", JASA 64(328),
1969; notation as in https://www.robinlinacre.com/maths_of_fellegi_sunter/). Blank and neutral
levels weigh 0. For comparisons with a term-frequency adjustment the exact level uses, instead of
the average u, the share of voters having the value (Splink's adjustment:
https://github.com/moj-analytical-services/splink/issues/2035), so agreeing on "Okonkwo" counts
for more than agreeing on "Smith".

The prior that a given person is a given voter is match_rate / n_voters: `match_rate` is the share
of incoming people who are on the voter file at all. Stored as plain JSON (never pickle).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.linking.levels import COMPARISONS

F64 = npt.NDArray[np.float64]
FORMAT = "groundswell.linking.model/1"


@dataclass(frozen=True)
class LinkageModel:
    m: tuple[tuple[float, ...], ...]  # per comparison (levels.COMPARISONS order), per level
    u: tuple[tuple[float, ...], ...]
    match_rate: float
    n_voters: int

    def __post_init__(self) -> None:
        if len(self.m) != len(COMPARISONS) or len(self.u) != len(COMPARISONS):
            raise ValueError(f"m and u need {len(COMPARISONS)} comparisons")
        for spec, m, u in zip(COMPARISONS, self.m, self.u, strict=True):
            if len(m) != spec.n_levels or len(u) != spec.n_levels:
                raise ValueError(f"{spec.name}: m and u need {spec.n_levels} levels")
            for p in (*m, *u):
                if not (math.isfinite(p) and 0.0 <= p <= 1.0):
                    raise ValueError(f"{spec.name}: probabilities must lie in [0, 1], got {p}")
        if not 0.0 < self.match_rate < 1.0:
            raise ValueError(f"match_rate must lie in (0, 1), got {self.match_rate}")
        if self.n_voters < 1:
            raise ValueError("n_voters must be positive")

    def prior_log2_odds(self) -> float:
        """log2 odds that one given person is one given voter, before comparing them."""
        prior = self.match_rate / self.n_voters
        return math.log2(prior / (1.0 - prior))

    def weight_tables(self) -> tuple[F64, ...]:
        """Per comparison, log2(m/u) by level with one extra (blank) entry; blank and neutral weigh 0."""
        tables = []
        for spec, m, u in zip(COMPARISONS, self.m, self.u, strict=True):
            table = np.zeros(spec.n_levels + 1)
            for level in range(spec.n_levels):
                if level not in spec.neutral:
                    table[level] = math.log2(max(m[level], 1e-12) / max(u[level], 1e-12))
            tables.append(table)
        return tuple(tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "match_rate": self.match_rate,
            "n_voters": self.n_voters,
            "comparisons": [
                {"name": spec.name, "levels": list(spec.level_names()), "m": list(m), "u": list(u)}
                for spec, m, u in zip(COMPARISONS, self.m, self.u, strict=True)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkageModel:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a linkage model of format {FORMAT}")
        comparisons = data["comparisons"]
        if [c["name"] for c in comparisons] != [spec.name for spec in COMPARISONS]:
            raise ValueError("the model's comparisons differ from this version's")
        for spec, c in zip(COMPARISONS, comparisons, strict=True):
            if list(c["levels"]) != list(spec.level_names()):
                raise ValueError(f"{spec.name}: the model's levels differ from this version's")
        return cls(
            m=tuple(tuple(float(p) for p in c["m"]) for c in comparisons),
            u=tuple(tuple(float(p) for p in c["u"]) for c in comparisons),
            match_rate=float(data["match_rate"]),
            n_voters=int(data["n_voters"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> LinkageModel:
        return cls.from_dict(json.loads(text))
