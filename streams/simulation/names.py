"""Name pools for the simulated world: a few thousand given and family names with heavy-tailed frequencies.

A voter file's names are far from uniform: a handful of names are common and most are rare, which
is what makes a name (with a zip or a birth year) telling. Each pool here is a head of common US
names written out below, followed by a tail of made-up names from a small syllable model, ranked
in that order and drawn with weights falling as (rank + offset)^-1 (Zipf's law, shifted so the
head is not too steep):

- family names: 6,000, the commonest at 0.7% of voters and the top ten at about 6% (Smith, the
  commonest US surname, is 0.8% of people in the 2010 census surname table:
  https://www.census.gov/topics/population/genealogy/data/2010_surnames.html);
- given names: 1,500 per sex, the commonest at about 3% of its sex and the top ten at about 20%.

Real files are more varied still (that census table lists over 160,000 surnames), so a name here
tells a matcher somewhat less than a real one would. The tail is generated from a fixed seed, so
the pools are constants: a world's seed decides only who carries which name.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FAMILY_POOL_SIZE = 6_000
GIVEN_POOL_SIZE = 1_500  # per sex
_FAMILY_OFFSET = 25.0
_GIVEN_OFFSET = 5.0
_NAME_SEED = "groundswell/names/v1"

_FEMALE_HEAD = """
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Sandra Margaret Ashley
Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah Stephanie Dorothy Rebecca Sharon Laura Cynthia Amy
Kathleen Angela Shirley Brenda Emma Anna Pamela Nicole Samantha Katherine Christine Debra Rachel Carolyn Janet
Maria Olivia Heather Helen Catherine Diane Julie Victoria Joyce Lauren Kelly Christina Ruth Joan Virginia Judith
Evelyn Hannah Andrea Megan Cheryl Jacqueline Madison Teresa Abigail Sophia Martha Sara Gloria Janice Kathryn Ann
Isabella Judy Charlotte Julia Grace Amber Alice Jean Denise Frances Danielle Marilyn Natalie Beverly Diana
Brittany Theresa Kayla Alexis Doris Lori Tiffany Aisha Mei Fatima Priya Chloe Nadia Rosa Sofia Ana Lucia Yolanda
Latoya Keisha Imani Yuki Huong Anjali Deepa Layla Amina Zainab Ama Ngozi Siobhan Niamh Aoife Ingrid Astrid Natasha
Olga Katarzyna Francesca Chiara Camille Elodie Greta Guadalupe Jasmine Monica Rose Tanya Wendy Vanessa Sylvia
Irene Paula Carmen Leah Marie Veronica Erin Tracy Lydia Naomi Ruby Hazel Stella Violet Nora Clara Ivy Elena Mia
"""
_MALE_HEAD = """
James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel Matthew Anthony Mark
Donald Steven Andrew Paul Joshua Kenneth Kevin Brian George Timothy Ronald Jason Edward Jeffrey Ryan Jacob Gary
Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Alexander Patrick Frank Raymond
Jack Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Zachary Douglas Peter Kyle Noah Ethan Jeremy Walter Christian
Keith Roger Terry Austin Sean Gerald Carl Harold Dylan Arthur Lawrence Jordan Jesse Bryan Billy Bruce Gabriel Joe
Logan Alan Juan Albert Willie Elijah Wayne Randy Vincent Mason Roy Ralph Bobby Russell Bradley Philip Eugene Luis
Carlos Jamal Tyrone Diego Marcus Andre Miguel Alejandro Francisco Xavier Darnell Malik Hiroshi Wei Jin Minh Thanh
Raj Vikram Omar Yusuf Ibrahim Tariq Kofi Chinedu Oluwaseun Declan Sven Lars Dmitri Ivan Stanislav Giovanni Matteo
Pierre Mathieu Hans Victor Martin Howard Fred Leonard Dale Curtis Craig Shawn Travis Lee Chad Derek Troy Tony
Calvin Oscar Jesus Manuel Pedro Rafael Ricardo Hector Ahmed Hassan Ali Leon Felix Hugo Owen Caleb Isaac Luke
"""
_FAMILY_HEAD = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson
Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera
Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart
Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim
Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo
Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler
Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds
Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford
Castro Marshall Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman
Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon
Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice
Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer
Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong
Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena Richards
Contreras Willis Carpenter Lawrence Sandoval Okafor Nakamura Kowalski Schneider Oconnor Obrien Dubois
"""

# The syllable model: an onset, a vowel and a coda make a root; a style's ending makes it a name.
_ONSETS = (
    "b", "br", "c", "ch", "cl", "cr", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "pr",
    "r", "s", "sh", "st", "t", "tr", "v", "w", "z", "",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ou")
_CODAS = ("", "", "", "l", "n", "r", "s", "t", "m", "nd", "rt", "ld", "ck", "ss", "nt")
_FAMILY_ENDINGS: tuple[tuple[str, ...], ...] = (
    ("ton", "ley", "son", "field", "ford", "wood", "well", "by", "man", "er", "ham", "ridge", "worth", "wick",
     "more", "land", "ett", "ins", "ers", "ock"),  # English
    ("ez", "es", "ado", "era", "ero", "illa", "ino", "oza", "ales", "ano", "eda", "uri"),  # Spanish
    ("mann", "berg", "stein", "hardt", "feld", "ner", "ler", "bach", "auer", "inger", "el", "ke"),  # German
    ("ski", "wicz", "enko", "ov", "in", "ak", "ek", "ic", "czyk", "uk"),  # Slavic
    ("elli", "etti", "ini", "one", "ucci", "ari", "esi", "aro", "occo", "ella"),  # Italian
    ("ani", "wala", "esh", "an", "ar", "ala", "iya", "ra"),  # South Asian
    ("", "ng", "ang", "ong", "uy", "ai"),  # East Asian: short names
    ("ola", "emi", "ayo", "ike", "anya", "oye", "ulu"),  # West African
)  # fmt: skip
_FAMILY_PREFIXES = ("Mc", "O", "Van", "De")  # "O'Donnell" and "De Luca" are folded to one word, as forms do
_FEMALE_ENDINGS = ("a", "ia", "ina", "elle", "ette", "ie", "lyn", "anne", "ara", "ena", "issa", "ey", "ine", "ora")
_MALE_ENDINGS = ("o", "an", "on", "er", "us", "el", "in", "ard", "iel", "ias", "en", "ando", "ic", "ey")


@dataclass(frozen=True)
class NamePool:
    """Names ranked from commonest to rarest, with their population shares (summing to 1)."""

    names: tuple[str, ...]
    shares: FloatArray

    def __post_init__(self) -> None:
        if len(self.names) != self.shares.shape[0] or len(set(self.names)) != len(self.names):
            raise ValueError("a pool needs one share per name and no repeated names")

    @property
    def cumulative(self) -> FloatArray:
        return np.cumsum(self.shares)

    def ranks(self, uniforms: FloatArray) -> IntArray:
        """Inverse-CDF draws: a uniform in [0, 1) to a rank (vectorised, for a million voters at once)."""
        cumulative = self.cumulative
        result: IntArray = np.minimum(np.searchsorted(cumulative, uniforms, side="right"), len(self.names) - 1)
        return result.astype(np.int64)


def zipf_shares(count: int, offset: float, exponent: float = 1.0) -> FloatArray:
    """Shares falling as (rank + offset)^-exponent, rank 0 the commonest."""
    weights = (np.arange(count) + offset) ** -exponent
    result: FloatArray = weights / weights.sum()
    return result


def _words(text: str) -> list[str]:
    return text.split()


def _root(rng: random.Random) -> str:
    syllables = rng.choice((1, 1, 2))
    text = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
    return text + rng.choice(_CODAS)


_UNPRONOUNCEABLE = re.compile(r"(.)\1\1|[aeiouy]{3}|[^aeiouy]{4}|[^aeiouy]{3}$")


def _plausible(name: str) -> bool:
    """Rejects the syllable model's unpronounceable joins: a letter thrice, three vowels or four
    consonants in a row, three consonants at the end."""
    return 3 <= len(name) <= 11 and _UNPRONOUNCEABLE.search(name) is None


def _family_tail(rng: random.Random) -> str:
    name = _root(rng) + rng.choice(rng.choice(_FAMILY_ENDINGS))
    if rng.random() < 0.06:
        name = rng.choice(_FAMILY_PREFIXES) + name
    return name


def _generated(
    rng: random.Random, head: Sequence[str], count: int, make: Callable[[random.Random], str], taken: set[str]
) -> tuple[str, ...]:
    """The head, then made-up names (none already taken) until there are `count`."""
    names = list(dict.fromkeys(head))
    seen = set(names) | taken
    while len(names) < count:
        name = make(rng).capitalize()
        if name.lower() not in seen and _plausible(name.lower()):
            seen.add(name.lower())
            names.append(name)
    return tuple(names[:count])


def _build_pools() -> tuple[NamePool, NamePool, NamePool]:
    rng = random.Random(_NAME_SEED)
    female_head, male_head = _words(_FEMALE_HEAD), _words(_MALE_HEAD)
    family = _generated(rng, _words(_FAMILY_HEAD), FAMILY_POOL_SIZE, _family_tail, set())
    heads = {n.lower() for n in (*female_head, *male_head)}
    female = _generated(rng, female_head, GIVEN_POOL_SIZE,
                        lambda r: _root(r) + r.choice(_FEMALE_ENDINGS), heads)  # fmt: skip
    male = _generated(rng, male_head, GIVEN_POOL_SIZE,
                      lambda r: _root(r) + r.choice(_MALE_ENDINGS), heads | {n.lower() for n in female})  # fmt: skip
    return (
        NamePool(female, zipf_shares(len(female), _GIVEN_OFFSET)),
        NamePool(male, zipf_shares(len(male), _GIVEN_OFFSET)),
        NamePool(family, zipf_shares(len(family), _FAMILY_OFFSET)),
    )


FEMALE_GIVEN, MALE_GIVEN, FAMILY = _build_pools()
GIVEN_NAMES: tuple[str, ...] = FEMALE_GIVEN.names + MALE_GIVEN.names
"""Every given name: the female pool, then the male one (the sexes' pools share no name)."""
FAMILY_NAMES: tuple[str, ...] = FAMILY.names
