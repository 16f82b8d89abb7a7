"""Simulated identities: the voter file's address and contact columns, and noisy people with known truth.

Everything here is derived deterministically from a `World` (and, for people, a seed):

- Addresses, per household (so every member shares one): each precinct gets its own streets,
  numbered along the street; in urban precincts (urbanicity > 0.6) six households share a building
  and differ by apartment. No two households of one zip share an address.
- Each voter's own email (`World.voter_email`) and phone (a number with a 0xx exchange, which the
  North American Numbering Plan never assigns, so no real line is ever simulated). The voter file
  holds them for a share of voters only (`VoterFileCoverage`), as appended files do.
- People (signups, email-list members), each with the voter they truly are (or None) and the
  noise applied, for measuring a matcher. The default mix (`NoiseMix`) is an assumption written
  down, not a measurement: rates of the order reported for web forms and voter-file matching.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from streams.simulation.names import FAMILY, FAMILY_NAMES, FEMALE_GIVEN, GIVEN_NAMES, MALE_GIVEN
from streams.simulation.world import REFERENCE_YEAR, World

IntArray = npt.NDArray[np.int64]

STREET_NAMES = (
    "Elm", "Oak", "Maple", "Cedar", "Pine", "Walnut", "Chestnut", "Birch", "Willow", "Hickory", "Sycamore", "Spruce",
    "Main", "Church", "High", "Market", "Mill", "Water", "Spring", "Park", "Lake", "Hill", "River", "Meadow",
    "Washington", "Lincoln", "Jefferson", "Madison", "Franklin", "Jackson", "Adams", "Monroe", "Grant", "Sherman",
    "Garfield", "Harrison", "Hamilton", "Clinton", "Wayne", "Union", "Liberty", "Center", "Prospect", "Highland",
    "Ridge", "Valley", "Forest", "Orchard", "Sunset", "Fairview", "Pleasant", "Cherry", "Locust", "Poplar", "Vine",
    "Dogwood", "Magnolia", "Laurel", "Holly", "Aspen", "Juniper", "Linden", "Beech", "Ash", "Hawthorn", "Mulberry",
    "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth", "Broad", "Front", "Green",
    "King", "Queen",
)  # fmt: skip
STREET_SUFFIXES = (
    ("Street", "St"), ("Avenue", "Ave"), ("Road", "Rd"), ("Drive", "Dr"), ("Lane", "Ln"), ("Court", "Ct"),
    ("Boulevard", "Blvd"), ("Place", "Pl"), ("Way", "Way"), ("Circle", "Cir"), ("Terrace", "Ter"),
    ("Parkway", "Pkwy"),
)  # fmt: skip
AREA_CODES = ("614", "216", "513", "330", "419", "937", "440", "740")
_PHONES_PER_AREA = 90 * 10_000  # exchanges 010-099, lines 0000-9999: never assigned by the NANP
_PHONE_STRIDE = 7_919  # a prime coprime to _PHONES_PER_AREA: voter → number is one-to-one
_HOUSEHOLDS_PER_BUILDING = 6
_BUILDINGS_PER_STREET = 30

# Nicknames people really write for the world's commoner given names (written independently of
# the matcher's table on purpose, and including some it does not know: Lyn, Dre, Mick, Carlitos).
SIM_NICKNAMES: dict[str, tuple[str, ...]] = {
    "Ana": ("Anna", "Annie"), "James": ("Jim", "Jimmy", "Jamie"), "Maria": ("Mary", "Marie"),
    "Robert": ("Bob", "Rob", "Bobby", "Robbie"), "Linda": ("Lindy", "Lyn"), "Michael": ("Mike", "Mikey", "Mick"),
    "Aisha": ("Ayesha",), "David": ("Dave", "Davey"), "Carlos": ("Carlitos", "Charlie"),
    "Sarah": ("Sara", "Sally", "Sadie"), "Kevin": ("Kev",), "Fatima": ("Fatma",), "Daniel": ("Dan", "Danny"),
    "Grace": ("Gracie",), "Luis": ("Lou", "Louie"), "Emily": ("Em", "Emmy", "Millie"), "Andre": ("Andy", "Dre"),
    "Olivia": ("Liv", "Livvy"), "Tyrone": ("Ty",), "Sofia": ("Sophia", "Sophie"), "Brian": ("Bryan",),
    "Hannah": ("Hanna",), "Marcus": ("Marc", "Mark"), "Nadia": ("Nadya",), "Rosa": ("Rose", "Rosie"),
    "Samuel": ("Sam", "Sammy"),
    # The head of the name pools (streams/simulation/names.py).
    "William": ("Will", "Bill", "Billy", "Liam"), "Elizabeth": ("Liz", "Beth", "Betty", "Lizzie", "Eliza"),
    "John": ("Jack", "Johnny"), "Richard": ("Rick", "Dick", "Rich"), "Joseph": ("Joe", "Joey"),
    "Thomas": ("Tom", "Tommy"), "Christopher": ("Chris", "Topher"), "Charles": ("Charlie", "Chuck"),
    "Matthew": ("Matt",), "Anthony": ("Tony",), "Steven": ("Steve",), "Andrew": ("Andy", "Drew"),
    "Joshua": ("Josh",), "Kenneth": ("Ken", "Kenny"), "Timothy": ("Tim",), "Jennifer": ("Jen", "Jenny"),
    "Patricia": ("Pat", "Patty", "Trish"), "Margaret": ("Maggie", "Peggy", "Meg"),
    "Katherine": ("Kate", "Kathy", "Katie"), "Jessica": ("Jess", "Jessie"), "Susan": ("Sue", "Susie"),
    "Deborah": ("Deb", "Debbie"), "Rebecca": ("Becky",), "Samantha": ("Sam",), "Alexander": ("Alex", "Xander"),
    "Nicholas": ("Nick",), "Benjamin": ("Ben", "Benny"), "Jonathan": ("Jon",), "Edward": ("Ed", "Ted", "Eddie"),
    "Gregory": ("Greg",), "Jacob": ("Jake",), "Zachary": ("Zach", "Zack"), "Stephanie": ("Steph",),
    "Christine": ("Chris", "Tina"), "Victoria": ("Vicky", "Tori"), "Kimberly": ("Kim",), "Pamela": ("Pam",),
    "Cynthia": ("Cindy",), "Jeffrey": ("Jeff",), "Raymond": ("Ray",), "Gerald": ("Jerry",),
    "Lawrence": ("Larry",), "Francisco": ("Paco", "Pancho"), "Alejandro": ("Alex", "Ale"),
    "Guadalupe": ("Lupe",), "Dmitri": ("Dima",), "Giovanni": ("Gianni",), "Katarzyna": ("Kasia",),
    "Ivan": ("Vanya",), "Stanislav": ("Stas",), "Barbara": ("Barb", "Barbie"), "Dorothy": ("Dot", "Dottie"),
    "Donald": ("Don", "Donnie"), "Ronald": ("Ron", "Ronnie"), "Nathan": ("Nate",), "Abigail": ("Abby",),
    "Gabriel": ("Gabe",), "Mary": ("Molly", "Mae"), "Frances": ("Fran", "Frannie"), "Leonard": ("Len", "Lenny"),
}  # fmt: skip
_ACCENTED = {"Sofia": "Sofía", "Andre": "André", "Chloe": "Chloé", "Lopez": "López", "Garcia": "García",
             "Martinez": "Martínez", "Nguyen": "Nguyễn", "Jose": "José"}  # fmt: skip
_KEYBOARD_NEIGHBOURS = {
    "a": "qsz", "b": "vgn", "c": "xdv", "d": "sfe", "e": "wrd", "f": "dgr", "g": "fht", "h": "gjy", "i": "uok",
    "j": "hku", "k": "jli", "l": "ko", "m": "n", "n": "bm", "o": "ipl", "p": "o", "q": "wa", "r": "etf", "s": "adw",
    "t": "ryg", "u": "yij", "v": "cb", "w": "qes", "x": "zc", "y": "tuh", "z": "xa",
}  # fmt: skip
_NEW_EMAIL_DOMAINS = ("example.com", "example.net", "mail.example", "inbox.example")


@dataclass(frozen=True)
class HouseholdAddresses:
    """Address parts by household index."""

    number: IntArray
    street: IntArray  # index into street_names
    unit: IntArray  # apartment number, 0 for none
    street_names: tuple[tuple[str, str, str], ...]  # (name, suffix, suffix abbreviation)

    def line(self, household: int, *, long_suffix: bool = False, unit_style: str = "Apt") -> str:
        name, suffix, short = self.street_names[int(self.street[household])]
        text = f"{int(self.number[household])} {name} {suffix if long_suffix else short}"
        unit = int(self.unit[household])
        if unit:
            text += f" #{unit}" if unit_style == "#" else f" {unit_style} {unit}"
        return text


def household_addresses(world: World) -> HouseholdAddresses:
    """Every household's address, a function of the world alone."""
    rng = np.random.default_rng([world.seed, 0xADD2E55])
    combos = [(n, s, a) for n in STREET_NAMES for s, a in STREET_SUFFIXES]
    order = rng.permutation(len(combos))
    street_names = tuple(combos[i] for i in order)

    precinct = world.household_precinct
    n_precincts = len(world.precincts)
    first = np.searchsorted(precinct, np.arange(n_precincts))
    local = np.arange(precinct.shape[0]) - first[precinct]
    households = np.bincount(precinct, minlength=n_precincts)
    urban = np.array([p.urbanicity > 0.6 for p in world.precincts])
    per_building = np.where(urban, _HOUSEHOLDS_PER_BUILDING, 1)
    buildings = -(-households // per_building)
    streets = np.maximum(1, -(-buildings // _BUILDINGS_PER_STREET))
    street_offset = np.cumsum(streets) - streets  # a zip's precincts are consecutive: distinct streets
    building = local // per_building[precinct]
    street_local = building % streets[precinct]
    street_index = (street_offset[precinct] + street_local) % len(street_names)
    street_start = rng.integers(1, 60, int(streets.sum())) * 100  # 100, 200, ... 5900
    position = building // streets[precinct]
    number = street_start[street_offset[precinct] + street_local] + 2 * position + (street_local % 2)
    unit = np.where(urban[precinct], local % per_building[precinct] + 1, 0)
    return HouseholdAddresses(number.astype(np.int64), street_index.astype(np.int64), unit.astype(np.int64),
                              street_names)  # fmt: skip


def voter_addresses(world: World, addresses: HouseholdAddresses | None = None) -> list[str]:
    """Each voter's address line as the voter file holds it ("412 Elm St Apt 3")."""
    addresses = addresses or household_addresses(world)
    by_household = [addresses.line(h) for h in range(world.n_households)]
    return [by_household[h] for h in world.voter_household.tolist()]


def voter_address(world: World, voter: int, addresses: HouseholdAddresses | None = None) -> str:
    addresses = addresses or household_addresses(world)
    return addresses.line(int(world.voter_household[voter]))


def voter_phone(voter: int) -> str:
    """The voter's own phone number (unique per voter index; exchange 010-099, never a real line)."""
    area = AREA_CODES[voter % len(AREA_CODES)]
    k = (voter // len(AREA_CODES) * _PHONE_STRIDE + 12_345) % _PHONES_PER_AREA
    exchange, line = divmod(k, 10_000)
    return f"+1{area}{exchange + 10:03d}{line:04d}"


@dataclass(frozen=True)
class VoterFileCoverage:
    """Which contacts the voter file holds: appended emails and phones cover only part of it."""

    email: float = 0.65
    phone: float = 0.70
    shared_household_email: float = 0.05  # a household member is on file under the household's first email


@dataclass(frozen=True)
class VoterFile:
    """The voter file's identity columns in the clear (hash emails and phones before they go anywhere)."""

    voter_id: list[str]
    given_name: list[str]
    family_name: list[str]
    birth_year: list[int]
    zip5: list[str]
    address_line1: list[str]
    email: list[str | None]
    phone: list[str | None]

    def __len__(self) -> int:
        return len(self.voter_id)


def voter_file(
    world: World,
    coverage: VoterFileCoverage | None = None,
    addresses: HouseholdAddresses | None = None,
) -> VoterFile:
    coverage = coverage or VoterFileCoverage()
    addresses = addresses or household_addresses(world)
    n = world.n_voters
    rng = np.random.default_rng([world.seed, 0xF11E])
    has_email = rng.random(n) < coverage.email
    has_phone = rng.random(n) < coverage.phone
    share = rng.random(n) < coverage.shared_household_email
    first_member = world.household_first_voter[world.voter_household]
    email_owner = np.where(share & (first_member != np.arange(n)) & has_email[first_member], first_member, np.arange(n))
    zips = [p.zip5 for p in world.precincts]
    return VoterFile(
        voter_id=[World.voter_id(i) for i in range(n)],
        given_name=np.array(GIVEN_NAMES, dtype=object)[world.given_name].tolist(),
        family_name=np.array(FAMILY_NAMES, dtype=object)[world.family_name].tolist(),
        birth_year=world.birth_year.tolist(),
        zip5=[zips[p] for p in world.voter_precinct.tolist()],
        address_line1=voter_addresses(world, addresses),
        email=[
            world.voter_email(o) if e else None for o, e in zip(email_owner.tolist(), has_email.tolist(), strict=True)
        ],
        phone=[voter_phone(i) if p else None for i, p in enumerate(has_phone.tolist())],
    )


@dataclass(frozen=True)
class NoiseMix:
    """Shares of people (or of on-file people, where marked) that each kind of noise touches."""

    on_file: float = 0.60  # signups who are registered voters in this file
    # Names (on-file people).
    nickname: float = 0.12  # when the given name has a common nickname
    given_typo: float = 0.03
    family_typo: float = 0.03
    family_changed: float = 0.04  # marriage or divorce since registering; a third of them hyphenated
    family_missing: float = 0.05
    accents_and_case: float = 0.15  # "SOFÍA LÓPEZ", "sofia lopez": formatting, not identity
    # Where they live (on-file people).
    moved: float = 0.08  # lives at another household's address now (zip changes with it)
    address_given: float = 0.35  # donation and event forms ask; petitions rarely
    zip_given: float = 0.95
    zip_plus4: float = 0.05
    # Birth year.
    birth_year_given: float = 0.40
    birth_year_off_by_one: float = 0.05
    # Contacts.
    email_given: float = 0.97
    usual_email: float = 0.80  # else a second address the voter file has never seen
    household_email: float = 0.05  # signs up with a household member's address
    phone_given: float = 0.45
    usual_phone: float = 0.90
    # People not on the file.
    off_file_household: float = 0.15  # of off-file people: lives with voters (new adult, unregistered)

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share in [0, 1], got {value}")


EMAIL_LIST_MIX = NoiseMix(on_file=0.55, address_given=0.10, zip_given=0.50, birth_year_given=0.05, email_given=1.0,
                          phone_given=0.10, family_missing=0.45)  # fmt: skip
"""Email-list members (an ESP's user table): always an email and a first name, a family name for
about half, a zip for half, rarely more."""


@dataclass(frozen=True)
class SimPerson:
    record_id: str
    given_name: str | None
    family_name: str | None
    email: str | None
    phone: str | None
    address_line1: str | None
    zip5: str | None
    birth_year: int | None
    true_voter_id: str | None
    noise: tuple[str, ...] = field(default=())


class IdentitySimulator:
    """Noisy people drawn from one world's voter file."""

    def __init__(self, world: World, coverage: VoterFileCoverage | None = None) -> None:
        self.world = world
        self.addresses = household_addresses(world)
        self.voter_file = voter_file(world, coverage, self.addresses)
        # Cumulative weights, so each draw is a bisection rather than a pass over thousands of names.
        self._given_pools = [(pool.names, pool.cumulative.tolist()) for pool in (FEMALE_GIVEN, MALE_GIVEN)]
        self._family_cumulative = FAMILY.cumulative.tolist()
        self._household_first = world.household_first_voter.tolist()
        self._household_size = world.household_size.tolist()
        self._voter_household = world.voter_household.tolist()
        self._household_precinct = world.household_precinct.tolist()
        self._zips = [p.zip5 for p in world.precincts]

    def signups(self, n: int, seed: int, mix: NoiseMix | None = None) -> list[SimPerson]:
        return self._people(n, seed, mix or NoiseMix(), "S")

    def email_people(self, n: int, seed: int, mix: NoiseMix | None = None) -> list[SimPerson]:
        return self._people(n, seed, mix or EMAIL_LIST_MIX, "E")

    def _people(self, n: int, seed: int, mix: NoiseMix, prefix: str) -> list[SimPerson]:
        rng = random.Random(f"identities/{self.world.seed}/{seed}/{prefix}")
        people = []
        for i in range(n):
            record_id = f"{prefix}{seed}-{i:07d}"
            if rng.random() < mix.on_file:
                people.append(self._on_file(rng, mix, record_id))
            else:
                people.append(self._off_file(rng, mix, record_id))
        return people

    def _on_file(self, rng: random.Random, mix: NoiseMix, record_id: str) -> SimPerson:
        world, file = self.world, self.voter_file
        voter = rng.randrange(world.n_voters)
        noise: list[str] = []
        given = file.given_name[voter]
        if given in SIM_NICKNAMES and rng.random() < mix.nickname:
            given = rng.choice(SIM_NICKNAMES[given])
            noise.append("nickname")
        if rng.random() < mix.given_typo:
            given = _typo(rng, given)
            noise.append("given_typo")
        family: str | None = file.family_name[voter]
        if rng.random() < mix.family_changed:
            other = self._family(rng)
            family = f"{family}-{other}" if rng.random() < 1 / 3 else other
            noise.append("family_changed")
        if family is not None and rng.random() < mix.family_typo:
            family = _typo(rng, family)
            noise.append("family_typo")
        if rng.random() < mix.family_missing:
            family = None
            noise.append("family_missing")
        household = self._voter_household[voter]
        if rng.random() < mix.moved:
            household = self._another_household(rng, household)
            noise.append("moved")
        email = None
        if rng.random() < mix.email_given:
            email, kind = self._email_of(rng, mix, voter)
            if kind:
                noise.append(kind)
        phone = None
        if email is None or rng.random() < mix.phone_given:
            phone = voter_phone(voter) if rng.random() < mix.usual_phone else _new_phone(rng)
        birth_year: int | None = None
        if rng.random() < mix.birth_year_given:
            birth_year = int(world.birth_year[voter])
            if rng.random() < mix.birth_year_off_by_one:
                birth_year += rng.choice((-1, 1))
                noise.append("birth_year_off")
        else:
            noise.append("no_birth_year")
        return self._person(rng, mix, record_id, given, family, email, phone, household, birth_year,
                            file.voter_id[voter], noise)  # fmt: skip

    def _off_file(self, rng: random.Random, mix: NoiseMix, record_id: str) -> SimPerson:
        given = self._given(rng)
        if rng.random() < mix.off_file_household:
            # Lives with voters but is not registered: the classic near-miss (same address, family name).
            household = rng.randrange(self.world.n_households)
            member = self._household_first[household]
            family: str | None = self.voter_file.family_name[member] if rng.random() < 0.8 else self._family(rng)
            birth_year = REFERENCE_YEAR - rng.randint(18, 24)
            shared = self.voter_file.email[member]
            email = shared if shared is not None and rng.random() < 0.3 else _new_email(rng, given, family or "x")
            noise = ["off_file", "off_file_household"]
        else:
            household = rng.randrange(self.world.n_households)
            family = self._family(rng)
            birth_year = REFERENCE_YEAR - int(min(95, max(18, round(rng.gauss(47, 17)))))
            email = _new_email(rng, given, family)
            noise = ["off_file"]
        if rng.random() < mix.family_missing:
            family = None
        email = email if rng.random() < mix.email_given else None
        phone = _new_phone(rng) if email is None or rng.random() < mix.phone_given else None
        year = birth_year if rng.random() < mix.birth_year_given else None
        return self._person(rng, mix, record_id, given, family, email, phone, household, year, None, noise)

    def _person(
        self,
        rng: random.Random,
        mix: NoiseMix,
        record_id: str,
        given: str,
        family: str | None,
        email: str | None,
        phone: str | None,
        household: int,
        birth_year: int | None,
        voter_id: str | None,
        noise: Sequence[str],
    ) -> SimPerson:
        """Where they live, and the formatting a web form lets through."""
        address = None
        if rng.random() < mix.address_given:
            address = self.addresses.line(
                household, long_suffix=rng.random() < 0.5, unit_style=rng.choice(("Apt", "#", "Unit", "apt."))
            )
        zip5 = None
        if rng.random() < mix.zip_given:
            zip5 = self._zips[self._household_precinct[household]]
            if rng.random() < mix.zip_plus4:
                zip5 = f"{zip5}-{rng.randrange(10_000):04d}"
        if rng.random() < mix.accents_and_case:
            given, family, address = (
                _reformat(rng, given),
                family and _reformat(rng, family),
                address and address.upper(),
            )
        return SimPerson(record_id, given, family, email, phone, address, zip5, birth_year, voter_id,
                         tuple(noise) or ("clean",))  # fmt: skip

    def _email_of(self, rng: random.Random, mix: NoiseMix, voter: int) -> tuple[str, str]:
        """The email a voter signs up with, and the noise tag ("" for their usual address)."""
        draw = rng.random()
        if draw < mix.household_email and self._household_size[self._voter_household[voter]] > 1:
            first = self._household_first[self._voter_household[voter]]
            others = [
                first + k for k in range(self._household_size[self._voter_household[voter]]) if first + k != voter
            ]
            return self.world.voter_email(rng.choice(others)), "household_email"
        if rng.random() < mix.usual_email:
            usual = self.world.voter_email(voter)
            return (usual.upper() if rng.random() < 0.05 else usual), ""
        return _new_email(rng, self.voter_file.given_name[voter], "x"), "new_email"

    def _given(self, rng: random.Random) -> str:
        """A given name with the world's frequencies (either sex, about as many of each)."""
        names, cumulative = rng.choice(self._given_pools)
        return rng.choices(names, cum_weights=cumulative)[0]

    def _family(self, rng: random.Random) -> str:
        return rng.choices(FAMILY.names, cum_weights=self._family_cumulative)[0]

    def _another_household(self, rng: random.Random, household: int) -> int:
        while True:
            other = rng.randrange(self.world.n_households)
            if other != household:
                return other


def _typo(rng: random.Random, text: str) -> str:
    """One keyboard slip: a neighbouring key, a dropped, doubled or swapped letter."""
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)  # first letters are typed with care (and keep Soundex)
    kind = rng.randrange(4)
    if kind == 0:
        lower = text[i].lower()
        swap = rng.choice(_KEYBOARD_NEIGHBOURS.get(lower, "e"))
        return text[:i] + (swap.upper() if text[i].isupper() else swap) + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    if kind == 2:
        return text[:i] + text[i] + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :] if i + 1 < len(text) else text[:i] + text[i]


def _reformat(rng: random.Random, name: str) -> str:
    name = _ACCENTED.get(name, name)
    return rng.choice((name.upper(), name.lower(), f" {name} "))


def _new_email(rng: random.Random, given: str, family: str) -> str:
    """An address no voter-file email can equal (voter-file ones are given.family.N@...)."""
    return f"{given.lower()}{family.lower()[:1]}{rng.randrange(10, 10**6)}@{rng.choice(_NEW_EMAIL_DOMAINS)}"


def _new_phone(rng: random.Random) -> str:
    """A number outside every voter's (exchange 100-199, also never assigned)."""
    return f"+1{rng.choice(AREA_CODES)}{rng.randrange(100, 200)}{rng.randrange(10_000):04d}"
