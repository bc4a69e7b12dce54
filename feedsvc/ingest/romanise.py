"""Hindi written in Latin letters as Hindi readers spell it (slugs and author keys): राहुल चतुर्वेदी → rahul chaturvedi.

Letter by letter, Devanagari goes through indic-transliteration's sanscript in its OPTITRANS scheme
(च ch, छ Ch, श sh, ष Sh, ज़ z, फ़ f), which is then folded to the Hunterian spelling the Government of
India uses for place names: vowel length unmarked, छ chh, क्ष ksh, ज्ञ gy, ऋ ri, ड़ r, ढ़ rh. Sanscript is
made for Sanskrit, where every written consonant is spoken with its vowel; Hindi drops that vowel
(the schwa) in places, so before transliterating we write the virama where Hindi drops it:

- word-final: dropped (बजट bajat), except after a one-letter word (न na) or a cluster ending in
  र य व ण, where Hindi keeps it (मित्र mitra, सत्य satya, कृष्ण krishna; but टेस्ट test, धर्म dharm);
- medial (Ohala's rule, read right to left): dropped between a vowel + consonant and a consonant
  + vowel (दूसरा dusra, समझना samajhna, सरकार sarkar) or a cluster opening a syllable (नेटफ्लिक्स
  netphliks), never in the first syllable (चतुर्वेदी);
- chandrabindu: n (गाँव ganv); anusvara: m before प फ ब भ म व ह (मुंबई mumbai, संवाद samvad), ngh in a final ंह
  (सिंह singh), n elsewhere (पेजिंग pejing, संजय sanjay, मैं main).

Text in other scripts goes through anyascii. tests/data/romanisation.tsv holds the pairs this is
measured against.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from anyascii import anyascii

VIRAMA = "\u094d"
NUKTA = "\u093c"
ANUSVARA, CHANDRABINDU, VISARGA = "\u0902", "\u0901", "\u0903"
_CONSONANT = f"[\u0915-\u0939\u0958-\u095f\u0979-\u097f]{NUKTA}?"
_VOWEL_SIGN = "[\u093a\u093b\u093e-\u094c\u094e\u094f\u0955-\u0957\u0962\u0963]"
_INDEPENDENT_VOWEL = "[\u0904-\u0914\u0960\u0961\u0972-\u0977]"
_UNIT = re.compile(f"({_CONSONANT})({VIRAMA}|{_VOWEL_SIGN})?|({_INDEPENDENT_VOWEL})|(.)", re.S)
_CODA = f"[{ANUSVARA}{CHANDRABINDU}{VISARGA}]"
# A run of Devanagari letters, without the dandas (sentence ends, not letters).
_DEVANAGARI_RUN = re.compile("[\u0900-\u0963\u0966-\u097f]+")
_WORD = re.compile(f"(?:{_CONSONANT}|{_INDEPENDENT_VOWEL}|{VIRAMA}|{_VOWEL_SIGN}|{_CODA})+")

# A final schwa stays after a cluster ending in one of these (मित्र, सत्य, तत्व, कृष्ण).
_KEEPS_FINAL_SCHWA = set("रयवण")
# A cluster of a consonant and one of these opens a syllable (प्ले, फ्लिक, ट्रेन): the schwa before it goes.
_SECOND_IN_ONSET = set("रल")
# The anusvara before these is said m (labials, and व ह as in संवाद, संहिता).
_NASAL_M_BEFORE = set("पफबभमवह")
# Vowels sanscript writes apart for English loans (ऑफ़िस, बैट): Hindi readers spell them o and e.
_LOAN_VOWELS = str.maketrans({"\u0949": "\u094b", "\u0945": "\u0947", "\u0911": "\u0913", "\u090d": "\u090f"})
# OPTITRANS spellings folded to Hunterian ones, longest first; case still tells letters apart here.
_TO_HUNTERIAN = [(".Dh", "rh"), (".D", "r"), (".kh", "kh"), (".g", "g"), (".N", "n"), (".a", ""),
                 ("Ch", "chh"), ("x", "ksh"), ("~n", "n"), ("~N", "n"), ("LLI", "lri"),
                 ("RR", "ri"), ("R", "ri"), ("M", "n"), ("H", "h"), ("Y", "y")]


@dataclass
class _Unit:
    """One consonant with its vowel (None: the inherent schwa, VIRAMA: none), or an independent vowel."""
    letter: str
    vowel: str | None
    consonant: bool
    coda: str = ""
    silent: bool = False  # its schwa is dropped

    @property
    def has_schwa(self) -> bool:
        return self.consonant and self.vowel is None and not self.coda

    @property
    def ends_open(self) -> bool:
        """Ends in a spoken vowel: a vowel + consonant + schwa sequence may start here."""
        if self.coda and (self.vowel is None or VISARGA in self.coda):
            return False  # संकलन: an anusvara after the schwa closes its syllable; after ए (गेंदबाज़) it nasalises the vowel
        return not self.consonant or (self.vowel != VIRAMA and not self.silent)


def _units(word: str) -> list[_Unit]:
    units: list[_Unit] = []
    for consonant, vowel, independent, other in _UNIT.findall(word):
        if consonant:
            units.append(_Unit(consonant, vowel or None, True))
        elif independent:
            units.append(_Unit(independent, None, False))
        elif other in (ANUSVARA, CHANDRABINDU, VISARGA) and units:
            units[-1].coda += other
        else:
            units.append(_Unit(other, None, False))
    return units


def _drop_schwas(units: list[_Unit]) -> None:
    last = len(units) - 1
    if last > 0 and units[last].has_schwa:
        before = units[last - 1]
        in_cluster = before.consonant and before.vowel == VIRAMA
        units[last].silent = not (in_cluster and units[last].letter in _KEEPS_FINAL_SCHWA)
    for i in range(last - 1, 0, -1):
        unit, after = units[i], units[i + 1]
        spoken_after = after.consonant and not after.silent and (
            after.vowel != VIRAMA or _opens_syllable(units, i + 1))
        if unit.has_schwa and units[i - 1].ends_open and spoken_after:
            unit.silent = True


def _opens_syllable(units: list[_Unit], i: int) -> bool:
    """A cluster that starts a syllable, as in loans (फ्लिक, प्ले, ट्रेन), not one split across two (सदस्य)."""
    second = units[i + 1] if i + 1 < len(units) else None
    return bool(second and second.letter in _SECOND_IN_ONSET and second.vowel != VIRAMA and not second.silent)


def _nasal(units: list[_Unit], i: int, mark: str) -> str:
    if mark == CHANDRABINDU:
        return "न" + VIRAMA  # a nasal vowel: गाँव ganv, हँसी hansi
    following = units[i + 1].letter[0] if i + 1 < len(units) and units[i + 1].consonant else ""
    if following == "ह" and i + 2 == len(units):
        return "न्ग" + VIRAMA  # सिंह singh
    # व and ह take m only after the schwa (संवाद samvad); after a long vowel they follow a nasal vowel (गांव ganv).
    labial = following in _NASAL_M_BEFORE and (units[i].vowel is None or following not in "वह")
    return ("म" if labial else "न") + VIRAMA


def _respelled(word: str) -> str:
    """The word as sanscript should read it: dropped schwas written as virama, nasals as letters."""
    units = _units(word.translate(_LOAN_VOWELS).replace("ज्ञ", "ग्य"))
    _drop_schwas(units)
    out = []
    for i, unit in enumerate(units):
        out.append(unit.letter + (VIRAMA if unit.silent else (unit.vowel or "")))
        for mark in unit.coda:
            out.append("ः" if mark == VISARGA else _nasal(units, i, mark))
    return "".join(out)


def _latin(word: str) -> str:
    # Imported here, not with the module: it pulls in toml, regex and tqdm (13 MiB RSS), which every
    # server worker would hold for a slug made only at ingest (bench row worker-rss-1m).
    from indic_transliteration import sanscript

    text = sanscript.transliterate(_respelled(word), sanscript.DEVANAGARI, sanscript.OPTITRANS)
    for optitrans, hunterian in _TO_HUNTERIAN:
        text = text.replace(optitrans, hunterian)
    return text.lower()


def _devanagari_run(run: str) -> str:
    return anyascii(_WORD.sub(lambda word: _latin(word.group()), run))  # digits, avagraha


def romanise(text: str) -> str:
    """`text` in lower-case ASCII: Hindi as Hindi readers spell it, other scripts through anyascii."""
    text = unicodedata.normalize("NFC", text)  # NFC keeps क़ ज़ ड़ … as consonant + nukta, as sanscript reads them
    parts, position = [], 0
    for run in _DEVANAGARI_RUN.finditer(text):
        parts.append(anyascii(text[position:run.start()]))
        parts.append(_devanagari_run(run.group()))
        position = run.end()
    parts.append(anyascii(text[position:]))
    return "".join(parts).lower()
