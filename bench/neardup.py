"""Near-duplicate clusters against copy-paste campaigns: recall per kind of edit and text length,
false merges over distinct real posts, and speed, with datasketch's MinHash LSH in the same run.

    python bench/neardup.py            # 30,000 distinct real posts, 1,500 campaign originals
    python bench/neardup.py --quick    # smoke run
    python bench/neardup.py --json     # the figures as JSON

The posts are real: XLM-T tweets (8 languages, Arabic and Devanagari among them), AfriSenti tweets
(14 African languages, Ethiopic and Arabic script among them), TweetEval's English tweets and Reddit
comments and posts. Exact duplicates after normalization (retweets, copies) are dropped first, so
every post of the stream is a distinct text.

* **Stream**: the distinct posts go through each engine in a shuffled order (batches of
  ``--batch``), each getting a cluster.
* **Recall**: for ``--originals`` posts of the stream, campaign variants are made per kind of edit
  (seeded, so every run makes the same ones) and looked up without being indexed; a variant is
  found when it lands in its original's cluster. The markup and case/punctuation edits are stripped
  by the normalization; the others change the words.
* **False merges**: the share of the stream's distinct posts that share a cluster with another;
  "clearly different": of those, the ones whose character 4-grams overlap the cluster's first
  post's by less than half (Jaccard < 0.5), so no near-copy at all.

The peer (datasketch MinHash, 128 permutations, and MinHashLSH at Jaccard ``--threshold``) sees the
same normalized text and the same features (character 4-grams), and a candidate counts only when
its estimated Jaccard reaches the threshold; its cluster is that of the earliest such candidate, as
ours is the earliest signature within the Hamming distance.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import threadpoolctl
from datasketch import MinHash, MinHashLSH

from murmur.batch import PostBatch
from murmur.enrich import minhash
from murmur.enrich.evaluate import load_xlmt
from murmur.enrich.neardup import (
    SHINGLE,
    NearDup,
    SimHashNearDup,
    TieredNearDup,
    normalized,
    signatures,
    simhashes,
)
from murmur.testing import has_shared_data, shared_data
from murmur.types import Post

SHORT = 80
"""Characters: a text shorter than this (before any edit) is short, the rest long."""

APPEND = {
    "english": "Please share this!",
    "french": "Partagez svp !",
    "german": "Bitte teilen!",
    "spanish": "¡Compártelo ya!",
    "italian": "Condividete tutti!",
    "portuguese": "Compartilhem agora!",
    "arabic": "انشروا رجاء!",
    "hindi": "कृपया शेयर करें!",
}
"""A short sentence appended, in the text's language where we have one (else English)."""


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    language: str
    script: str


def script_of(text: str) -> str:
    """``latin`` or ``other``: the script of most of the text's letters."""
    latin = other = 0
    for ch in text:
        if ch.isalpha():
            if unicodedata.name(ch, "").startswith("LATIN"):
                latin += 1
            else:
                other += 1
    return "latin" if latin >= other else "other"


def real_texts() -> list[Text]:
    """Every real text with its language, first copy only (after normalization)."""
    found: list[tuple[str, str]] = []
    for split in ("train", "val"):
        for d in load_xlmt(shared_data("sentiment", "xlmt"), split):
            found += [(t, d.language) for t in d.texts]
    for path in sorted(shared_data("sentiment", "afrisenti").glob("*/train.tsv")):
        with path.open(encoding="utf-8", newline="") as f:
            rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            col = next(rows, []).index("tweet")
            found += [(row[col], path.parent.name) for row in itertools.islice(rows, 1500) if len(row) > col]
    emoji = shared_data("sentiment", "tweeteval", "emoji", "train_text.txt")
    found += [(t, "english") for t in emoji.read_text(encoding="utf-8").split("\n")]
    for line in shared_data("payloads", "reddit", "things.jsonl").read_bytes().splitlines():
        d = orjson.loads(line).get("data", {})
        t = (d.get("body") or f"{d.get('title') or ''}\n\n{d.get('selftext') or ''}").strip()
        found.append((t[:2000], "english"))
    seen: set[str] = set()
    out: list[Text] = []
    for t, lang in found:
        t = t.strip()
        key = normalized(t)
        if len(key) - 2 < 2 * SHINGLE or key in seen:  # too short for a signature, or a copy
            continue
        seen.add(key)
        out.append(Text(t, lang, script_of(t)))
    return out


# --- campaign edits --------------------------------------------------------------------------------


def is_word(token: str) -> bool:
    return len(token) >= 2 and token[0].isalpha() and not token.startswith(("http", "www."))


def word_slots(tokens: list[str]) -> list[int]:
    return [i for i, t in enumerate(tokens) if is_word(t)]


@dataclass
class Editor:
    """Makes campaign variants of a text, deterministically from ``seed`` and the text."""

    vocabulary: dict[str, list[str]]
    seed: int = 0

    def rng(self, text: str, kind: str) -> random.Random:
        return random.Random(f"{self.seed}:{kind}:{text}")

    def other_word(self, rng: random.Random, lang: str, not_: str) -> str:
        words = self.vocabulary.get(lang) or self.vocabulary["english"]
        while True:
            w = rng.choice(words)
            if w.lower() != not_.lower():
                return w

    def replace(self, t: Text, n: int, rng: random.Random) -> str | None:
        tokens = t.text.split()
        slots = word_slots(tokens)
        if len(slots) < n + 2:
            return None
        for i in rng.sample(slots, n):
            tokens[i] = self.other_word(rng, t.language, tokens[i])
        return " ".join(tokens)

    def variants(self, t: Text) -> dict[str, str | None]:
        text, lang = t.text, t.language
        out: dict[str, str | None] = {"as-is copy": text}
        rng = self.rng(text, "markup")
        out["markup (@, link, emoji, #)"] = (
            f"@user{rng.randrange(1000)} {text} https://t.co/{rng.getrandbits(40):x} "
            f"{rng.choice('🔥😡👇🙏')} #{rng.choice(['breaking', 'news', 'share', 'vote'])}"
        )
        out["case + punctuation"] = (
            text.upper().replace(",", "").replace(".", "!!") if rng.random() < 0.5 else text.lower() + " !!!"
        )
        out["one word replaced"] = self.replace(t, 1, self.rng(text, "replace1"))
        out["two words replaced"] = self.replace(t, 2, self.rng(text, "replace2"))
        tokens = text.split()
        rng = self.rng(text, "insert")
        at = rng.randrange(len(tokens) + 1)
        out["one word inserted"] = " ".join([*tokens[:at], self.other_word(rng, lang, ""), *tokens[at:]])
        out["sentence appended"] = f"{text} {APPEND.get(lang, APPEND['english'])}"
        out["one typo"] = self.typo(tokens, self.rng(text, "typo"))
        out["two words swapped"] = self.swap(tokens, self.rng(text, "swap"))
        return out

    @staticmethod
    def typo(tokens: list[str], rng: random.Random) -> str | None:
        slots = [i for i in word_slots(tokens) if len(tokens[i]) >= 4]
        if not slots:
            return None
        i = rng.choice(slots)
        w = tokens[i]
        at = rng.randrange(1, len(w) - 1)
        how = rng.choice(["drop", "double", "swap"])
        if how == "drop":
            w = w[:at] + w[at + 1 :]
        elif how == "double":
            w = w[:at] + w[at] + w[at:]
        else:
            w = w[: at - 1] + w[at] + w[at - 1] + w[at + 1 :]
        return " ".join([*tokens[:i], w, *tokens[i + 1 :]])

    @staticmethod
    def swap(tokens: list[str], rng: random.Random) -> str | None:
        slots = word_slots(tokens)
        pairs = [i for i in slots if i + 1 in slots and tokens[i].lower() != tokens[i + 1].lower()]
        if not pairs:
            return None
        i = rng.choice(pairs)
        return " ".join([*tokens[:i], tokens[i + 1], tokens[i], *tokens[i + 2 :]])


EDITS = (
    "as-is copy",
    "markup (@, link, emoji, #)",
    "case + punctuation",
    "one word replaced",
    "two words replaced",
    "one word inserted",
    "sentence appended",
    "one typo",
    "two words swapped",
)
WORD_EDITS = ("one word replaced", "two words replaced", "sentence appended", "one typo")
"""The realistic campaign edits that change the words (the summary's "word edits")."""


def vocabulary(texts: Sequence[Text]) -> dict[str, list[str]]:
    words: dict[str, Counter[str]] = defaultdict(Counter)
    for t in texts:
        words[t.language].update(w.strip(".,!?;:\"'()") for w in t.text.split() if is_word(w))
    return {
        lang: sorted(w for w, c in counts.items() if c >= 2 and len(w) >= 3) for lang, counts in words.items()
    }


# --- engines ---------------------------------------------------------------------------------------


def shingles(text: str) -> set[bytes]:
    key = normalized(text)
    return {key[i : i + SHINGLE].encode() for i in range(len(key) - SHINGLE + 1)}


@dataclass
class Engine:
    name: str
    clusters: list[str]
    seconds: float
    lookup: Callable[[Sequence[str]], list[str | None]]
    """The clusters of texts looked up (not indexed): ``None`` where a text found none."""


def run_murmur(texts: Sequence[str], batch: int, comp: NearDup | TieredNearDup | SimHashNearDup) -> Engine:
    simhashes(texts[:100])  # warm-up: the character tables and caches (not timed)
    now = datetime.now(UTC)
    posts = [
        Post(platform="file", post_id=str(i), created_at=now, ingested_at=now, author_key="k", text=t)
        for i, t in enumerate(texts)
    ]
    t0 = time.process_time()
    for i in range(0, len(posts), batch):
        part = posts[i : i + batch]
        comp.signature.process(part)
        comp.clusters.process_batch(PostBatch(part))
    seconds = time.process_time() - t0

    if isinstance(comp, TieredNearDup):
        tiered = comp.index

        def lookup(variants: Sequence[str]) -> list[str | None]:
            found: list[str | None] = []
            for sig in signatures(variants, counted=True):
                if sig is None:
                    found.append(None)
                    continue
                words = np.frombuffer(sig[1], dtype="<u4")
                found.append(tiered.lookup(words[: minhash.PERMUTATIONS], int(words[-1])))
            return found

        lo, hi = tiered.mid_features
        name = (
            f"murmur MinHash ({comp.signature.name}, {comp.clusters.name}, {tiered.bands} bands x "
            f"{tiered.rows} rows, Jaccard >= {tiered.threshold}, {lo}-{hi} 4-grams among themselves "
            f">= {tiered.mid_threshold}; {tiered.looked_up / len(posts):.1%} of the stream had candidates)"
        )
    elif isinstance(comp, NearDup):
        index = comp.index

        def lookup(variants: Sequence[str]) -> list[str | None]:
            found: list[str | None] = []
            for sig in signatures(variants):
                found.append(None if sig is None else index.lookup(np.frombuffer(sig[1], dtype="<u4")))
            return found

        name = (
            f"murmur MinHash ({comp.signature.name}, {comp.clusters.name}, {minhash.PERMUTATIONS} minima, "
            f"{index.bands} bands x {index.rows} rows, Jaccard >= {index.threshold}; "
            f"{index.looked_up / len(posts):.1%} of the stream had candidates)"
        )
    else:
        simhash_index = comp.index

        def lookup(variants: Sequence[str]) -> list[str | None]:
            return [None if s is None else simhash_index.lookup(s) for s in simhashes(variants)]

        distance = simhash_index.max_distance
        name = f"murmur SimHash ({comp.signature.name}, {comp.clusters.name}, Hamming <= {distance})"
    return Engine(name, [p.dup_cluster or "" for p in posts], seconds, lookup)


def run_peer(texts: Sequence[str], threshold: float, num_perm: int) -> Engine:
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: dict[str, tuple[int, MinHash, str]] = {}  # key: (arrival, signature, cluster)

    def find(m: MinHash) -> str | None:
        near = [kept[k] for k in lsh.query(m)]
        near = [n for n in near if m.jaccard(n[1]) >= threshold]
        return min(near, key=lambda n: n[0])[2] if near else None

    out: list[str] = []
    t0 = time.process_time()
    for i, t in enumerate(texts):
        m = MinHash(num_perm=num_perm)
        m.update_batch(list(shingles(t)))
        cluster = find(m) or f"p:{i}"
        key = str(i)
        lsh.insert(key, m)
        kept[key] = (i, m, cluster)
        out.append(cluster)
    seconds = time.process_time() - t0

    def lookup(variants: Sequence[str]) -> list[str | None]:
        found: list[str | None] = []
        for v in variants:
            m = MinHash(num_perm=num_perm)
            m.update_batch(list(shingles(v)))
            found.append(find(m))
        return found

    return Engine(f"datasketch MinHashLSH (Jaccard >= {threshold}, {num_perm} perm)", out, seconds, lookup)


# --- measuring -------------------------------------------------------------------------------------


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def false_merges(engine: Engine, texts: Sequence[Text]) -> dict[str, Any]:
    first: dict[str, int] = {}
    size: Counter[str] = Counter(engine.clusters)
    merged = {"short": 0, "long": 0}
    apart = {"short": 0, "long": 0}
    total = {"short": 0, "long": 0}
    different = 0
    for i, (c, t) in enumerate(zip(engine.clusters, texts, strict=True)):
        bucket = "short" if len(t.text) < SHORT else "long"
        total[bucket] += 1
        if c not in first:
            first[c] = i
        if size[c] > 1:
            merged[bucket] += 1
            if first[c] != i and jaccard(shingles(t.text), shingles(texts[first[c]].text)) < 0.5:
                different += 1
        else:
            apart[bucket] += 1
    n = len(texts)
    return {
        "posts": n,
        "merged": (merged["short"] + merged["long"]) / n,
        "merged_short": merged["short"] / max(total["short"], 1),
        "merged_long": merged["long"] / max(total["long"], 1),
        "clearly_different": different / n,
    }


def recall(
    engine: Engine, originals: Sequence[int], texts: Sequence[Text], editor: Editor
) -> dict[str, dict[str, float | int]]:
    """Per kind of edit and bucket (``all``, ``short``, ``long``, ``latin``, ``other``): the share of
    variants found in their original's cluster, and how many variants there were."""
    hits: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for edit in EDITS:
        pairs = [(i, editor.variants(texts[i])[edit]) for i in originals]
        made = [(i, v) for i, v in pairs if v is not None]
        found = engine.lookup([v for _, v in made])
        for (i, _), c in zip(made, found, strict=True):
            ok = c is not None and c == engine.clusters[i]
            t = texts[i]
            for bucket in ("all", "short" if len(t.text) < SHORT else "long", t.script):
                hits[edit, bucket].append(ok)
    out: dict[str, dict[str, float | int]] = {}
    for edit in EDITS:
        row: dict[str, float | int] = {}
        for bucket in ("all", "short", "long", "latin", "other"):
            got = hits[edit, bucket]
            row[bucket] = sum(got) / len(got) if got else float("nan")
            row[f"n_{bucket}"] = len(got)
        out[edit] = row
    word = [ok for edit in WORD_EDITS for ok in hits[edit, "all"]]
    out["word edits (summary)"] = {"all": sum(word) / len(word), "n_all": len(word)}
    return out


def pick_originals(texts: Sequence[Text], n: int, rng: random.Random) -> list[int]:
    """``n`` texts with enough words to edit, half short and half long where there are enough."""
    short = [i for i, t in enumerate(texts) if len(word_slots(t.text.split())) >= 4 and len(t.text) < SHORT]
    long = [i for i, t in enumerate(texts) if len(word_slots(t.text.split())) >= 4 and len(t.text) >= SHORT]
    k = min(n // 2, len(short))
    return sorted(rng.sample(short, k) + rng.sample(long, min(n - k, len(long))))


def table(rows: Iterable[list[str]], header: list[str]) -> str:
    body = list(rows)
    widths = [max(len(r[c]) for r in [header, *body]) for c in range(len(header))]

    def fmt(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(cells))

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body)])


def pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}%"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 3,000 posts, 200 originals")
    p.add_argument("--posts", type=int, default=30_000, help="distinct real posts in the stream")
    p.add_argument("--originals", type=int, default=1_500, help="campaign originals (half short, half long)")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--threshold", type=float, default=0.7, help="the peer's Jaccard threshold")
    p.add_argument("--num-perm", type=int, default=128, help="the peer's MinHash permutations")
    p.add_argument(
        "--minhash-threshold", type=float, default=minhash.THRESHOLD, help="murmur MinHash's threshold"
    )
    p.add_argument("--minhash-bands", type=int, default=minhash.BANDS, help="murmur MinHash's LSH bands")
    p.add_argument("--minhash-rows", type=int, default=minhash.ROWS, help="murmur MinHash's minima per band")
    p.add_argument(
        "--mid-threshold",
        type=float,
        default=minhash.MID_THRESHOLD,
        help="murmur cluster@3's threshold for 45-90 4-gram texts",
    )
    p.add_argument("--no-peer", action="store_true", help="measure murmur only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument(
        "--sweep",
        action="store_true",
        help="also: murmur's recall and false matches at larger Hamming distances (brute force, no index)",
    )
    args = p.parse_args(argv)
    if not has_shared_data():
        print("bench/neardup.py needs ../shared/data (set MURMUR_SHARED)", file=sys.stderr)
        return 2
    threadpoolctl.threadpool_limits(1)
    n, n_orig = (3000, 200) if args.quick else (args.posts, args.originals)
    rng = random.Random(args.seed)
    every = real_texts()
    rng.shuffle(every)
    texts = every[:n]
    editor = Editor(vocabulary(every), args.seed)
    originals = pick_originals(texts, n_orig, rng)
    plain = [t.text for t in texts]

    engines = [
        run_murmur(plain, args.batch, SimHashNearDup()),
        run_murmur(
            plain,
            args.batch,
            NearDup(threshold=args.minhash_threshold, bands=args.minhash_bands, rows=args.minhash_rows),
        ),
        run_murmur(
            plain,
            args.batch,
            TieredNearDup(
                threshold=args.minhash_threshold,
                bands=args.minhash_bands,
                rows=args.minhash_rows,
                mid_threshold=args.mid_threshold,
            ),
        ),
    ]
    if not args.no_peer:
        engines.append(run_peer(plain, args.threshold, args.num_perm))
    report: dict[str, Any] = {
        "posts": len(texts),
        "originals": len(originals),
        "languages": dict(Counter(t.language for t in texts).most_common()),
        "engines": {},
    }
    for e in engines:
        report["engines"][e.name] = {
            "posts_per_s": len(texts) / e.seconds,
            "recall": recall(e, originals, texts, editor),
            "false_merges": false_merges(e, texts),
        }
    if args.sweep:
        report["sweep"] = sweep(texts, originals, editor)
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())
        return 0
    non_latin = sum(t.script == "other" for t in texts)
    print(
        f"{len(texts):,} distinct real posts ({len(report['languages'])} languages, "
        f"{non_latin:,} in non-Latin scripts), {len(originals):,} campaign originals "
        f"({sum(len(texts[i].text) < SHORT for i in originals):,} short < {SHORT} chars)"
    )
    for name, r in report["engines"].items():
        print(f"\n{name}: {r['posts_per_s']:,.0f} posts/s (stream, CPU time, one core)")
        rows = (
            [
                edit,
                *(pct(float(rec[b])) for b in ("all", "short", "long", "latin", "other")),
                f"{rec['n_all']:,}",
            ]
            for edit, rec in r["recall"].items()
            if edit in EDITS
        )
        header = ["recall: variant in its original's cluster", "all", "short", "long", "latin", "other", "n"]
        print(table(rows, header))
        fm = r["false_merges"]
        print(
            f"word edits (replace 1/2, append, typo): "
            f"recall {pct(r['recall']['word edits (summary)']['all'])}\n"
            f"false merges: {pct(fm['merged'])} of {fm['posts']:,} distinct posts share a cluster "
            f"(short {pct(fm['merged_short'])}, long {pct(fm['merged_long'])}); "
            f"clearly different (4-gram Jaccard < 0.5): {pct(fm['clearly_different'])}"
        )
    if args.sweep:
        print(
            "\nmurmur's signatures at other Hamming distances (brute force over all pairs, no index): "
            "recall of word edits, and false matches a post would meet in a full index"
        )
        rows = (
            [f"<= {d}", *(pct(float(r[e])) for e in WORD_EDITS), f"{r['per_post_in_1m']:.2f}"]
            for d, r in report["sweep"].items()
        )
        print(table(rows, ["Hamming", *WORD_EDITS, "matches/post (1M index)"]))
    return 0


DISTANCES = (3, 5, 7, 9, 11)


def sweep(texts: Sequence[Text], originals: Sequence[int], editor: Editor) -> dict[int, dict[str, float]]:
    """For each distance d of ``DISTANCES``: the share of each word edit's variants within d of
    their original's signature, and how many other posts of the stream a post is within d of,
    scaled to an index of 1,000,000 (real near-copies among the distinct posts count too)."""
    sig = np.array([s or 0 for s in simhashes([t.text for t in texts])], dtype=np.uint64)
    close = np.zeros(max(DISTANCES) + 1, dtype=np.int64)
    for i in range(0, len(sig), 500):
        d = np.bitwise_count(sig[i : i + 500, None] ^ sig[None, :])
        d[np.arange(len(d)), np.arange(i, i + len(d))] = 64  # not itself
        close += np.bincount(d.ravel(), minlength=65)[: len(close)]
    per_post = np.cumsum(close) / len(sig) * 1_000_000 / (len(sig) - 1)
    out: dict[int, dict[str, float]] = {d: {"per_post_in_1m": float(per_post[d])} for d in DISTANCES}
    for edit in WORD_EDITS:
        made = [(i, v) for i in originals if (v := editor.variants(texts[i])[edit]) is not None]
        var = np.array([s or 0 for s in simhashes([v for _, v in made])], dtype=np.uint64)
        dist = np.bitwise_count(var ^ sig[[i for i, _ in made]])
        for d in DISTANCES:
            out[d][edit] = float((dist <= d).mean())
    return out


if __name__ == "__main__":
    raise SystemExit(main())
