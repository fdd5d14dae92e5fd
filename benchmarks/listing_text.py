"""Varied listing text for the analyser benchmark: titles and bodies composed from many different sentences.

A benchmark over one repeated paragraph measures a cache more than an analyser: the regex engine and the
branch predictor see the same bytes every time. These listings draw their bodies from the sentences of the real
corpus (tests/fixtures/real/, public pages in seven languages) and from sellers' stock phrases (condition,
shipping, prices, phone numbers, dates), in lengths from a line to a few kilobytes, and their titles from
several templates, so that each listing is text the analyser has not just seen.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "real"

# (name as sellers write it in a title, block prefixes of the model's own serials)
MODELS = [
    ("MS-20", ["14", "439"]),
    ("MS20", ["14", "439"]),
    ("MS-10", ["13"]),
    ("Polysix", ["38", "39", "46"]),
    ("Poly Six", ["38", "39", "46"]),
    ("Mono/Poly", ["37", "47"]),
    ("SQ-10", ["15"]),
    ("MS-50", ["19"]),
    ("Poly-61", ["7"]),
    ("Delta", ["28"]),
    ("KR-55", ["25", "36"]),
    ("Trident MkII", ["41"]),
    ("Lambda", ["23"]),
    ("Sigma", ["24"]),
    ("SQ10", ["15"]),
]
WRONG_SHARE = 0.15  # about the share of wrong title serials the register keeper notes
WRONG_PREFIXES = ["73", "18", "45", "22", "8", "60"]
TITLE_CUES = ["SN", "s/n", "S/N:", "Serial #", "serial number", "Seriennummer", "#", "SN:", "Ser. No.", "N°"]

# Listings are written in one language each; the share of each, about as the crawled sources give them.
LANGUAGES = {"en": 0.62, "ja": 0.16, "de": 0.1, "fr": 0.05, "it": 0.035, "es": 0.035}

# Titles as sellers write them, per language; {m} the model, {s} the serial, {c} a cue word.
TITLE_TEMPLATES = {
    "en": [
        "Korg {m} vintage analog synth {c} {s}",
        "Korg {m} {s}",
        "KORG {m} Analog Synthesizer - serviced - {c} {s}",
        "Vintage Korg {m} synthesizer, {c} {s}, fully working",
        "Korg {m} ({c} {s}) with original manual and patch cables",
        "Korg {m} 1979 analog monosynth #{s} great condition",
        "RARE Korg {m} Vintage Analog Synth Keyboard Made in Japan",  # no serial in the title
        "Korg {m} analogue synthesiser for sale, recently serviced",
        "korg {m} works great, see photos",
        "Korg {m} w/ flight case - s/n {s} - ships from Berlin",
    ],
    "ja": [
        "KORG {m} アナログシンセ 製造番号{s} 動作品",
        "【動作確認済】KORG コルグ {m} シンセサイザー シリアル{s}",
        "コルグ KORG {m} ビンテージ 動作良好",
    ],
    "de": [
        "Korg {m} Synthesizer Seriennummer {s} - gewartet, top Zustand",
        "Korg {m} Analog Synthesizer, SN {s}, Abholung oder Versand",
    ],
    "fr": ["Synthétiseur Korg {m} numéro de série {s} révisé", "Korg {m} vintage très bon état"],
    "it": ["Korg {m} sintetizzatore analogico matricola {s}", "Korg {m} vintage funzionante"],
    "es": ["Sintetizador Korg {m} número de serie {s}", "Korg {m} – recapped, s/n {s} – 1.650 EUR"],
}

# Sellers' stock phrases: what a listing's body is mostly made of, with the numbers that are not serials.
STOCK_SENTENCES = {
    "en": [
        "Fully serviced by a technician last year, all keys and knobs work.",
        "Minor wear on the wooden side panels, see photos.",
        "Ships worldwide in a custom flight case; buyer pays shipping of $85 within the US.",
        "Price 1,899.00 USD, firm.",
        "Call 0171 234567 for questions, evenings only.",
        "Made in Japan in 1979.",
        "Smoke-free studio, no returns.",
        "All sliders were cleaned with DeoxIT and the power supply was recapped in 2021.",
        "The keyboard has a couple of slightly yellowed keys but every key triggers.",
        "Pickup in Brooklyn, NY 11211 or shipping via FedEx Ground.",
        "eBay item number 334455667788 is my other listing for the matching case.",
        "Local pickup preferred; I can meet you at the train station.",
        "Comes with the original owner's manual and 18 patch cables.",
        "Tested on 120V with the original power cord, everything sounds as it should.",
        "The filter self-oscillates nicely and the envelope is snappy.",
        "Please check out my other items, I am clearing out the studio.",
        "Order no. 4471-22 from the 1980 dealer price list is included as a curiosity.",
        "Dimensions 57 x 38 x 21 cm, weight 11 kg.",
        "Payment by bank transfer or PayPal friends and family only.",
        "Contact me at +44 20 7946 0958 or through the messaging system.",
        "I bought it from the original owner in 2004 and it has lived in my home studio since.",
        "A few scratches on the top panel, nothing serious.",
        "Battery was replaced before any leakage, board is clean.",
        "Sounds amazing, fat basses and screaming leads.",
        "Sold as is, no warranty, but it works perfectly.",
        "Listing ID 88213. Postcode 80331 Munich.",
        "Will be double boxed with plenty of bubble wrap.",
        "It was calibrated last month, tuning is stable after a 10 minute warm-up.",
        "Selling because I need the space, not because anything is wrong with it.",
        "See the video on my channel for a demo of all the functions.",
        "Serviced in March 2023 (invoice attached, ref 20230314).",
        "The tracking number will be sent within 24 hours of payment.",
        "Room 12, house 7: ask for Jan when you come to try it.",
        "Keys were cleaned and the contacts re-gold-plated; velocity is not a feature of this synth.",
    ],
    "de": [
        "Gerät ist voll funktionsfähig, alle Tasten und Regler funktionieren einwandfrei.",
        "Versand nur innerhalb Deutschlands, Abholung in Hamburg möglich.",
        "Preis 1.450 EUR VB, keine Garantie, keine Rücknahme.",
        "Das Gehäuse hat leichte Gebrauchsspuren, siehe Fotos.",
        "Tel. 0171 2345678 ab 18 Uhr, PLZ 20095.",
    ],
    "fr": [
        "Très bon état général, révisé en 2022, quelques traces d'usure.",
        "Envoi possible en colis suivi, frais de port 35 €.",
        "Tel. 06 12 34 56 78 après 18h.",
    ],
    "it": [
        "Ottime condizioni, perfettamente funzionante, revisionato da tecnico.",
        "Spedizione in tutta Italia con corriere assicurato, prezzo 1.300 €.",
    ],
    "es": [
        "Funciona perfectamente, revisado recientemente, envío a toda España.",
        "Precio 1.200 €, no acepto cambios.",
    ],
    "ja": [
        "動作確認済み。ノークレーム・ノーリターンでお願いします。",
        "送料無料。価格 98,000円。",
        "外観は年式相応の使用感がありますが、目立つ傷はありません。",
        "鍵盤、ツマミ、スライダーすべて正常に動作します。",
        "発送は元箱なしで丁寧に梱包いたします。",
    ],
}
STOCK_SHARE = 0.4  # of a body's sentences, the seller's stock phrases; the rest from the real corpus

# Where a seller writes the serial in the body, per language; {s} the serial.
BODY_SERIAL_SENTENCES = {
    "en": [
        "Serial number {s} on the back plate.",
        "S/N: {s}.",
        "The serial is {s}, as on the photo of the rear panel.",
        "The plate on the rear says {s}.",
        "Serial #{s}",
    ],
    "de": ["Seriennummer {s}.", "Die Seriennummer auf dem Typenschild: {s}."],
    "fr": ["Numéro de série : {s}.", "N° de série {s}."],
    "it": ["Matricola {s}, originale.", "Numero di serie {s}."],
    "es": ["Número de serie {s}.", "N° de serie {s}."],
    "ja": ["製造番号：{s}", "シリアルナンバー {s}"],
}
SERIAL_IN_BODY_SHARE = 0.3
OTHER_BODY_SERIAL_SHARE = 0.1  # of those, a body serial that differs from the title's (a mismatch to flag)

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*|\s*\[…\]\s*|\n+")
# A corpus sentence that gives a serial belongs to its own listing: left out, so a body's serials are only
# those this generator puts there on purpose (its listing's own, or a deliberate mismatch).
_SERIAL_LIKE = re.compile(r"\d{5,}|\d{3}['’ ]\d{3}|s/?n|serial|seriennummer|製造番号|シリアル|matricola", re.IGNORECASE)


@dataclass(frozen=True)
class Listing:
    title: str
    body: str


def corpus_sentences(corpus: Path = CORPUS) -> dict[str, list[str]]:
    """The sentences of the real corpus's bodies by language, without those that give a serial."""
    sentences: dict[str, list[str]] = {}
    for path in sorted(corpus.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            for sentence in _SENTENCE_END.split(record.get("body") or ""):
                sentence = sentence.strip()
                if len(sentence) >= 12 and _SERIAL_LIKE.search(sentence) is None:
                    sentences.setdefault(record["language"], []).append(sentence)
    return sentences


def _serial(rng: random.Random, prefixes: list[str]) -> str:
    """A serial of the model's blocks, or (WRONG_SHARE of the time) one of another block."""
    prefix = rng.choice(prefixes) if rng.random() > WRONG_SHARE else rng.choice(WRONG_PREFIXES)
    return prefix + "".join(rng.choice("0123456789") for _ in range(6 - len(prefix)))


def _body_length(rng: random.Random) -> int:
    """A target body length: log-uniform from a line (80 characters) to a long description (4 KB)."""
    return int(80 * (4096 / 80) ** rng.random())


def _body(rng: random.Random, corpus: list[str], stock: list[str], serial_sentences: list[str], serial: str,
          prefixes: list[str]) -> str:
    target = _body_length(rng)
    parts: list[str] = []
    size = 0
    while size < target:
        sentence = rng.choice(stock if rng.random() < STOCK_SHARE else corpus)
        parts.append(sentence)
        size += len(sentence) + 1
    if rng.random() < SERIAL_IN_BODY_SHARE:
        written = _serial(rng, prefixes) if rng.random() < OTHER_BODY_SERIAL_SHARE else serial
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(serial_sentences).format(s=written))
    return " ".join(parts)


def generate(n: int, seed: int = 7, with_body: bool = True) -> list[Listing]:
    """n listings, each a title naming a model and (mostly) a serial, and a body of varied sentences in the
    title's language; `with_body=False` gives titles only, as eBay's search summaries are."""
    rng = random.Random(seed)
    body_rng = random.Random(seed + 1)  # its own stream: the titles are the same with bodies or without
    corpus = corpus_sentences()
    languages, weights = list(LANGUAGES), list(LANGUAGES.values())
    listings = []
    for _ in range(n):
        language = rng.choices(languages, weights)[0]
        model, prefixes = rng.choice(MODELS)
        serial = _serial(rng, prefixes)
        title = rng.choice(TITLE_TEMPLATES[language]).format(m=model, s=serial, c=rng.choice(TITLE_CUES))
        body = ""
        if with_body:
            body = _body(body_rng, corpus[language], STOCK_SENTENCES[language], BODY_SERIAL_SENTENCES[language], serial,
                         prefixes)
        listings.append(Listing(title, body))
    return listings
