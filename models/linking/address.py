"""Street addresses in a comparable form: house number, street (standard abbreviations), unit.

"12 North Elm Street, Apt. 4B" and "12 N Elm St #4b" both become Address("12", "n elm st", "4b").
Street suffixes, directionals and secondary-unit designators use the USPS standard abbreviations
(Publication 28, appendices B, C1 and C2: https://pe.usps.com/text/pub28/28apc_002.htm), with
the commonest informal spellings added.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from models.linking.normalize import fold

# Publication 28 appendix C1 (primary suffixes), plus informal spellings seen on forms.
_SUFFIX_WORDS = """
alley:aly allee:aly annex:anx arcade:arc avenue:ave av:ave aven:ave avn:ave avnue:ave bayou:byu
beach:bch bend:bnd bluff:blf bottom:btm boulevard:blvd boul:blvd boulv:blvd blv:blvd branch:br
bridge:brg brook:brk burg:bg bypass:byp camp:cp canyon:cyn cape:cpe causeway:cswy center:ctr
centre:ctr cntr:ctr circle:cir circ:cir crcl:cir cliff:clf club:clb common:cmn corner:cor
course:crse court:ct crt:ct cove:cv creek:crk crescent:cres crossing:xing dale:dl dam:dm
divide:dv drive:dr drv:dr driv:dr estate:est expressway:expy expy:expy extension:ext falls:fls
ferry:fry field:fld flat:flt ford:frd forest:frst forge:frg fork:frk fort:ft freeway:fwy
garden:gdn gardens:gdns gateway:gtwy glen:gln green:grn grove:grv harbor:hbr haven:hvn
heights:hts highway:hwy hiway:hwy hill:hl hills:hls hollow:holw inlet:inlt island:is
junction:jct key:ky knoll:knl lake:lk lakes:lks landing:lndg lane:ln light:lgt loop:loop
manor:mnr meadow:mdw meadows:mdws mill:ml mission:msn mount:mt mountain:mtn orchard:orch
parkway:pkwy parkwy:pkwy pkway:pkwy pky:pkwy pine:pne pines:pnes place:pl plain:pln plains:plns
plaza:plz point:pt port:prt prairie:pr ranch:rnch ridge:rdg river:riv road:rd route:rte
shore:shr spring:spg springs:spgs square:sq station:sta street:st str:st strt:st stream:strm
summit:smt terrace:ter terr:ter trace:trce trail:trl trailer:trlr tunnel:tunl turnpike:tpke
valley:vly view:vw village:vlg vista:vis wells:wls
"""
# Appendix B (directionals) and ordinal street names written out.
_OTHER_WORDS = """
north:n south:s east:e west:w northeast:ne northwest:nw southeast:se southwest:sw
first:1st second:2nd third:3rd fourth:4th fifth:5th sixth:6th seventh:7th eighth:8th ninth:9th tenth:10th
"""
# Appendix C2 (secondary unit designators): the designator is dropped, its identifier kept. Some
# designators stand alone ("Rear", "Upper"): those only count as the line's last word. Before the
# street has begun a designator must be followed by a number to count ("Lot 4", not "Lot Rd").
_UNIT_DESIGNATORS = frozenset((
    "apartment", "apt", "bldg", "building", "dept", "department", "fl", "floor", "hangar", "hngr", "lot",
    "pier", "rm", "room", "slip", "space", "spc", "stop", "suite", "ste", "trailer", "trlr", "unit", "#",
))  # fmt: skip
_STANDALONE_UNITS = frozenset((
    "basement", "bsmt", "front", "frnt", "lobby", "lbby", "lower", "lowr", "office", "ofc", "penthouse", "ph",
    "rear", "side", "upper", "uppr",
))  # fmt: skip


def _table(text: str) -> dict[str, str]:
    return dict(pair.split(":") for pair in text.split())


_LEADING = _table(_OTHER_WORDS)
_WORDS = _table(_SUFFIX_WORDS) | _LEADING
_SUFFIX_ABBREVIATIONS = frozenset(_table(_SUFFIX_WORDS).values())
_PUNCTUATION = re.compile("[.,;:'\u2019`\"()]")
_HASH = re.compile(r"#")
_PO_BOX = re.compile(r"^(?:p\s*o\s*box|post office box|pobox)\b")


class Address(NamedTuple):
    number: str  # "12", "12a"; "" when the line has none (a named building, a bare street)
    street: str  # "n elm st"
    unit: str  # "4b"; "" when none

    def line(self) -> str:
        parts = [self.number, self.street, f"#{self.unit}" if self.unit else ""]
        return " ".join(p for p in parts if p)


def _is_number(token: str) -> bool:
    return token[:1].isdigit()


@lru_cache(maxsize=16_384)
def parse(raw: str | None) -> Address | None:
    """The comparable form of an address line, or None when nothing usable is in it."""
    if not raw:
        return None
    text = _HASH.sub(" # ", _PUNCTUATION.sub(" ", fold(raw))).strip()
    po_box = _PO_BOX.match(text)
    if po_box:
        rest = text[po_box.end() :].split()
        return Address(rest[0], "po box", "") if rest else None
    tokens = text.split()
    number = tokens.pop(0) if tokens and tokens[0][:1].isdigit() else ""
    street: list[str] = []
    unit = ""
    for i, token in enumerate(tokens):
        next_has_digit = i + 1 < len(tokens) and any(c.isdigit() for c in tokens[i + 1])
        if token in _UNIT_DESIGNATORS and (street or next_has_digit):
            identifiers = [t for t in tokens[i + 1 :] if t not in _UNIT_DESIGNATORS]  # "apt #4"
            unit = identifiers[0] if identifiers else ""
            break
        if street and token in _STANDALONE_UNITS and i == len(tokens) - 1:
            unit = token
            break
        street.append(token)
    # A bare identifier after the suffix is a unit: "12 Elm St 4B".
    trailing_id = len(street) >= 3 and any(c.isdigit() for c in street[-1])
    if not unit and trailing_id and _WORDS.get(street[-2], street[-2]) in _SUFFIX_ABBREVIATIONS:
        unit = street.pop()
    if not street and not number:
        return None
    # The first word keeps a suffix-like spelling ("Park Ave", "Court St") but abbreviates a
    # directional or an ordinal ("North Elm St", "First Ave").
    words = [_LEADING.get(street[0], street[0]), *(_WORDS.get(w, w) for w in street[1:])] if street else []
    return Address(number, " ".join(words), unit)
