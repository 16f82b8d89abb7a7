"""Given-name equivalences: nicknames, diminutives and spelling variants of common US given names.

Each line of `_GROUPS` is one group of names that can stand for each other, the formal name first
("robert: bob bobby rob ..."). A name may sit in several groups ("chris" is short for Christopher,
Christine and Christian), and equivalence is *not* transitive: two names are equivalent when they
share a group, so Christopher and Christina, which only share "chris", are not.

The table was written for this project from common usage (English, plus the Spanish diminutives
frequent on US voter files); it is deliberately incomplete and the probabilistic comparison's
fuzzy levels catch much of what it misses.
"""

from __future__ import annotations

from functools import lru_cache

_GROUPS = """
aaron: ron ronnie
abigail: abby abbie gail
abraham: abe bram
adam: addy
adelaide: addie adele
adrian: adrien
agnes: aggie nessa
albert: al bert bertie
alberto: beto al
alejandro: alex ale jandro
alexander: alex al alec alek sandy xander lex
alexandra: alex alexa sandra sandy lexie lexi
alexis: lexi lexie alex
alfred: al alf alfie fred freddie
alfonso: al alphonso fonzie poncho
alice: allie ally alicia
alison: ali allie allison alyson
allen: al alan allan
amanda: mandy manda
amelia: amy millie mia
andrew: andy drew
andre: andy andres andreas dre
angela: angie angel
anna: ana ann anne annie nan nancy anita
annabelle: annie belle bella
anthony: tony ant anton
antoinette: toni netty
antonio: tony toni tono
archibald: archie
arnold: arnie
arthur: art artie
august: gus augie
augustine: gus augie
aisha: ayesha aysha
barbara: barb barbie babs
barnabas: barney
bartholomew: bart
beatrice: bea trixie
benedict: ben benny
benjamin: ben benny benji benjy
bernadette: bernie
bernard: bernie barney
beverly: bev
bradley: brad
brian: bryan brien bri
bridget: biddy bridgette
calvin: cal
cameron: cam
camille: cami millie
carl: karl
carlos: charlie carlitos
caroline: carol carrie caro carolyn
catherine: cathy kathy kate katie kat kay kitty katherine kathryn kathleen
cecilia: cece cissy celia
charles: charlie chuck chas chaz chip carl
charlotte: charlie lottie
christian: chris christy
christina: chris chrissy tina christie christine kristina kristine
christopher: chris kit topher christy kristopher
clarence: clare
clifford: cliff
clinton: clint
concepcion: concha conchita
cornelius: neil connie
curtis: curt kurt
cynthia: cindy
cyrus: cy
daniel: dan danny
danielle: dani
david: dave davey davy
deborah: deb debbie debra
delores: lola dee dolores
dennis: denny
diana: di diane dianne
dominic: dom nick dominick
donald: don donnie
dorothy: dot dottie dolly
douglas: doug
edgar: ed eddie
edmund: ed eddie ned
eduardo: lalo ed eddie
edward: ed eddie ted teddy ned
edwin: ed eddie
eleanor: ellie nell nora elinor
elijah: eli
elias: eli
elizabeth: liz lizzie beth betsy betty eliza libby elsie lisa bess bessie
ellen: nell nellie ellie
emily: em emmy millie emilie
emma: em emmy
emmanuel: manny manuel
enrique: kike quique henry
ernest: ernie
eugene: gene
evelyn: evie eve
ezekiel: zeke
fatima: fatma
florence: flo flossie
frances: fran frannie franny
francis: frank frankie fran
francisco: paco pancho frank cisco
franklin: frank frankie
frederick: fred freddie fritz rick
gabriel: gabe
gabrielle: gabby gabi
genevieve: gen genny
gerald: gerry jerry
geraldine: gerry
gertrude: gertie trudy
gilbert: gil bert
gloria: glory
gregory: greg
guadalupe: lupe lupita
guillermo: memo william
gwendolyn: gwen
harold: harry hal
harriet: hattie
harrison: harry
helen: nell nellie lena
henry: hank harry hal
herbert: herb bert
howard: howie
ignacio: nacho
isaac: ike
isabel: bella izzy isabelle isabella
isadore: izzy
jacob: jake jack
jacqueline: jackie jacqui
james: jim jimmy jamie jimbo
jane: janie jenny
janet: jan
jean: jeannie jeanne
jeffrey: jeff geoff geoffrey
jennifer: jen jenny jenn
jeremiah: jerry
jeremy: jerry
jerome: jerry
jesse: jess
jessica: jess jessie
jesus: chuy
joanna: jo joanie joanne johanna
john: jack johnny jon
jonathan: jon jonny nathan
jose: pepe joe
joseph: joe joey jos
josephine: jo josie
joshua: josh
judith: judy jude
julia: jules julie juliana
katherine: kathy kate katie kat kay kitty catherine kathryn
kenneth: ken kenny
kevin: kev
kimberly: kim kimberley
laura: laurie lori lauren
lawrence: larry laurie lawrie laurence
leonard: leo len lenny
leopold: leo
lillian: lil lily
linda: lindy
lorraine: lori
louis: lou louie luis lewis
louise: lou lulu
lucille: lucy
lucinda: lucy cindy
luis: lou louie louis lucho
madeline: maddie madge madeleine
manuel: manny manolo
marcus: marc mark markus
margaret: maggie meg peggy marge margie greta daisy peg
maria: mary marie mari
martha: marty mattie patsy
martin: marty
mary: mae molly polly mamie marie maria
matilda: tilly mattie
matthew: matt matty
maurice: mo morris
maximilian: max
maxwell: max
melinda: mel lindy mindy
melissa: mel missy lissa
michael: mike mikey mick mickey
michelle: shelly shelley michele
miriam: mimi
mitchell: mitch
mortimer: mort
moses: mo moe
nadia: nadya
nancy: nan
natalie: nat tally natalia
nathan: nate nat
nathaniel: nate nat nathan
nicholas: nick nicky nico
nicole: nikki nicky
norman: norm
olivia: liv livvy olive
oliver: ollie
oswald: oz ozzie
pamela: pam
patricia: pat patty trish tricia
patrick: pat paddy patsy
penelope: penny
peter: pete
philip: phil pip phillip
priscilla: cilla
randolph: randy
raymond: ray
rebecca: becky becca
refugio: cuca cuco
reginald: reg reggie
richard: rich rick ricky dick richie
robert: bob bobby rob robbie bert
roberta: bobbie robbie
roberto: beto rob
roderick: rod roddy
rodney: rod
roger: rodge
ronald: ron ronnie
rosa: rose rosie
rosalind: roz rosie
rosario: chayo
rosemary: rose rosie
rudolph: rudy
russell: russ
samantha: sam sammy
samuel: sam sammy
sandra: sandy
sarah: sara sally sadie
sebastian: seb
sofia: sophia sophie
stanley: stan
stephanie: steph stephie
stephen: steve stevie steven stefan
stuart: stu stewart
susan: sue susie suzy suzanne
sylvester: sly
teresa: terry tess tessa theresa
terrence: terry terence
theodore: ted teddy theo
thomas: tom tommy thom
timothy: tim timmy
tobias: toby
tyrone: ty
valerie: val
veronica: ronnie
victor: vic
victoria: vicky tori
vincent: vince vinny
virginia: ginny
vivian: viv
walter: walt wally
wesley: wes
william: will bill billy willy liam
winifred: winnie
winston: win
zachary: zach zack zak
"""


def _parse(text: str) -> dict[str, frozenset[int]]:
    groups: dict[str, set[int]] = {}
    for number, line in enumerate(filter(None, (row.strip() for row in text.splitlines()))):
        formal, _, rest = line.partition(":")
        for name in (formal, *rest.split()):
            groups.setdefault(name.strip(), set()).add(number)
    return {name: frozenset(ids) for name, ids in groups.items()}


_NAME_GROUPS = _parse(_GROUPS)
_FORMAL = tuple(line.partition(":")[0].strip() for line in filter(None, map(str.strip, _GROUPS.splitlines())))
_FORMAL_SET = frozenset(_FORMAL)


def groups_of(name: str) -> frozenset[int]:
    """The ids of the groups a normalised given name belongs to (empty when it has none)."""
    return _NAME_GROUPS.get(name, frozenset())


def equivalent(a: str, b: str) -> bool:
    """Two different normalised given names that can name the same person (Bob and Robert)."""
    return a != b and not groups_of(a).isdisjoint(groups_of(b))


@lru_cache(maxsize=65536)
def canonical(name: str) -> str:
    """A blocking form: the name itself if it heads a group, else its first group's head ("bob" → "robert").

    Names sharing a canonical form are equivalent, but not every equivalent pair shares one ("chris"
    → "christian", not "christopher"); the (family name, zip) blocking key still catches those.
    """
    if name in _FORMAL_SET:
        return name
    ids = groups_of(name)
    return _FORMAL[min(ids)] if ids else name


def group_count() -> int:
    return len(_FORMAL)


def names() -> frozenset[str]:
    return frozenset(_NAME_GROUPS)
