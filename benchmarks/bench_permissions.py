"""Document permissions at scale: search latency and recall@10 when a caller sees 1% or 50%.

A :class:`pipelines.store.PassageStore` of 100,000 SYNTHETIC passages (384-d unit vectors from
``bench_scale.make_dataset``'s Gaussian mixture, short texts of synthetic words for BM25), 10
passages per document, so 10,000 documents under 100 folders (``collection/f042/doc04217.md``).
Access rules (:mod:`identity.access`) give every document to a group nobody asking is in, and
folders ``f000`` (1% of the documents) to group ``one`` and ``f000``-``f049`` (50%) to group
``half``; the callers are viewers in ``one``, in ``half``, and a viewer of a home without rules
("none": every document visible, the baseline). Their scopes come from one
:class:`identity.ScopeCache` per rules file, as the page and the API use it (``for_store``, timed
cold and cached).

For 200 queries (a stored passage's vector plus noise, and four words of its text), the three
callers are measured side by side, query by query, in rotating order (other load on the machine
then weighs on all three alike): the scope lookup, dense retrieval (``embedding_retrieval``:
FAISS with the scope as ID selector) and BM25 (``bm25_retrieval``: the scope as mask), each
through the store with the passages fetched. Recall@10 is against the exact top 10 within the
visible passages, by brute force in numpy (dense: inner products; BM25: the full score vector,
ties counted as hits); every hit is checked to be inside the scope. Both index kinds: ``flat``
(exact) and ``auto`` (what DocQA builds at this size: IVF), each timed with faiss's default
OpenMP threads and with one (``--threads``): on a busy machine, threads waiting for a core make a
single query's multi-threaded search tens of times slower, which swamps what a scope costs.

A full ask adds the question encoder and the reader, which a scope does not change. Over the
first index kind's passages, ``QueryService.answer`` (hybrid retrieval, the shipped reader) is
timed for the three callers side by side (``--scaled-ask-questions``; the questions are three
words of a passage, so BM25 finds passages; one faiss thread). With ``--ask`` (the default) the
demo collection is also indexed into a temporary home and asked for a viewer whom a rule hides
24 of its 46 documents against one without rules, question by question in alternation.

    python benchmarks/bench_permissions.py                   # ~6 minutes on 2 idle cores
    python benchmarks/bench_permissions.py --passages 20000 --no-ask --out /tmp/p.json

Prints a table and writes benchmarks/results/permissions.json (README rows, environment).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from bench_env import REPO_ROOT, write_result
from bench_scale import make_dataset
from haystack import Document

from evaluation.environment import cpu_description, environment
from identity import AccessRules, Caller, Role, ScopeCache
from pipelines.bm25 import tokenize
from pipelines.faiss_index import IndexSpec
from pipelines.store import PassageStore
from pipelines.store.files import SourceRecord

logger = logging.getLogger("bench_permissions")

K = 10
VARIANTS = ("none", "1%", "50%")
WORDS_PER_PASSAGE = 30
QUERY_WORDS = 4
VOCABULARY = 20_000
# The rules: everything to a group no caller here is in, then the visible share to theirs.
RULES = (("**", "staff"), ("f000/**", "one"), ("f0[0-4]?/**", "half"))
GROUPS = {"1%": "one", "50%": "half"}


# -- the synthetic collection ---------------------------------------------------------------------


@dataclass
class Collection:
    vectors: np.ndarray  # (passages, dim), unit rows
    texts: list[str]
    doc_of: np.ndarray  # document number of each passage (per_doc passages each)
    sources: list[str]  # displayed path of each document
    per_doc: int


def _vocabulary(rng: np.random.Generator) -> np.ndarray:
    """Pronounceable synthetic words (no English stopwords can appear: no vowel-only words)."""
    consonants, vowels = list("bdfgklmnprstvz"), list("aeiou")
    words: set[str] = set()
    while len(words) < VOCABULARY:
        syllables = rng.integers(2, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    return np.array(sorted(words))


def make_collection(passages: int, per_doc: int, folders: int, seed: int = 0) -> Collection:
    rng = np.random.default_rng(seed + 1)
    vectors = make_dataset(passages, queries=1, seed=seed).vectors
    vocabulary = _vocabulary(rng)
    # Zipf-like word frequencies, as in text: a few common words, a long tail of rare ones.
    weights = 1.0 / np.arange(1, VOCABULARY + 1)
    draws = rng.choice(VOCABULARY, size=(passages, WORDS_PER_PASSAGE), p=weights / weights.sum())
    texts = [" ".join(vocabulary[row]) for row in draws]
    documents = -(-passages // per_doc)
    doc_of = np.arange(passages) // per_doc
    # Folders interleave documents, so a folder's passages are spread over the FAISS ids.
    sources = [f"collection/f{d % folders:03d}/doc{d:05d}.md" for d in range(documents)]
    return Collection(vectors, texts, doc_of, sources, per_doc)


def build_store(data: Collection, spec: IndexSpec, folder: Path) -> tuple[PassageStore, float]:
    """The store (one ``replace_source`` per document), saved to ``folder``; seconds taken."""
    started = time.perf_counter()
    store = PassageStore(embedding_dim=data.vectors.shape[1], index=spec)
    for number, source in enumerate(data.sources):
        start, end = number * data.per_doc, min((number + 1) * data.per_doc, len(data.texts))
        record = SourceRecord(
            doc_id=f"d{number:05d}", source=source, path=f"/data/{source}", title=f"doc {number}",
            file_type="md", sha256=f"{number:064x}", size=1000, mtime=0.0,
            indexed_at="2026-01-01T00:00:00+00:00",
        )  # fmt: skip
        passages = [
            Document(
                id=f"p{i:07d}",
                content=data.texts[i],
                meta={"doc_id": record.doc_id, "source": source, "passage_index": i - start},
                embedding=data.vectors[i].tolist(),
            )
            for i in range(start, end)
        ]
        store.replace_source(record, " ".join(data.texts[start:end]), passages)
    store.save(folder)  # a saved version: what ScopeCache and the BM25 cache key on
    store.keyword_index()  # built once here, as a server's first keyword search does
    return store, time.perf_counter() - started


# -- exact answers (brute force) ------------------------------------------------------------------


def dense_truth(data: Collection, query: np.ndarray, rows: np.ndarray | None) -> set[int]:
    base = np.arange(len(data.vectors)) if rows is None else rows
    scores = data.vectors[base] @ query
    return {int(base[i]) for i in np.argpartition(-scores, K - 1)[:K]}


def bm25_truth(scores: np.ndarray, rows: np.ndarray | None) -> tuple[int, float]:
    """(how many hits a full answer has, the 10th best score) within ``rows``."""
    visible = scores if rows is None else scores[rows]
    positive = visible[visible > 0]
    if len(positive) == 0:
        return 0, 0.0
    want = min(K, len(positive))
    return want, float(np.sort(positive)[-want])


def percentiles(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(1000 * statistics.median(values), 3),
        "p95_ms": round(1000 * float(np.percentile(values, 95)), 3),
    }


# -- one index kind -------------------------------------------------------------------------------


@dataclass
class Scoped:
    """The store, each variant's scope lookup, scope and visible passage rows."""

    store: PassageStore
    lookups: dict[str, Callable[[], frozenset[str] | None]]
    scopes: dict[str, frozenset[str] | None]
    rows: dict[str, np.ndarray | None]


def prepare(data: Collection, spec: IndexSpec, work: Path) -> tuple[Scoped, dict[str, Any]]:
    """Build the store and the rules; the callers' scopes, timed cold (and their first search)."""
    store, build_s = build_store(data, spec, work / "index")
    info: dict[str, Any] = {"index": store.index_info(), "build_s": round(build_s, 1)}
    rules = AccessRules(work / "home" / "access_rules.json")
    for pattern, group in RULES:
        rules.allow(pattern, group)
    cache = ScopeCache(rules)
    no_rules = ScopeCache(AccessRules(work / "bare" / "access_rules.json"))  # never written
    callers = {
        v: Caller(f"viewer-{v}", Role.VIEWER, frozenset({GROUPS.get(v, "eng")})) for v in VARIANTS
    }
    lookups: dict[str, Callable[[], frozenset[str] | None]] = {
        "none": lambda: no_rules.for_store(callers["none"], store),
        "1%": lambda: cache.for_store(callers["1%"], store),
        "50%": lambda: cache.for_store(callers["50%"], store),
    }
    scopes: dict[str, frozenset[str] | None] = {}
    rows: dict[str, np.ndarray | None] = {}
    info["scopes"] = {}
    for variant, lookup in lookups.items():
        started = time.perf_counter()
        scope = scopes[variant] = lookup()
        first = {"first_lookup_ms": round(1000 * (time.perf_counter() - started), 1)}
        if scope is None:
            rows[variant] = None
            first |= {"documents": len(data.sources), "passages": len(data.vectors)}
        else:
            numbers = np.fromiter((int(d[1:]) for d in scope), dtype=np.int64)
            rows[variant] = np.flatnonzero(np.isin(data.doc_of, numbers))
            first |= {"documents": len(scope), "passages": len(rows[variant])}
            # The first search with a new scope reads its passages (then cached per scope).
            started = time.perf_counter()
            store.embedding_retrieval(data.vectors[0], top_k=K, scope=scope)
            first["first_search_ms"] = round(1000 * (time.perf_counter() - started), 1)
        first["fraction"] = round(first["passages"] / len(data.vectors), 4)
        info["scopes"][variant] = first
    assert scopes["none"] is None and scopes["1%"] is not None and scopes["50%"] is not None
    return Scoped(store, lookups, scopes, rows), info


def time_queries(data: Collection, scoped: Scoped, queries: int, seed: int = 7) -> dict[str, Any]:
    """The three callers side by side on the same queries; see the module docstring."""
    store, lookups, scopes, rows = scoped.store, scoped.lookups, scoped.scopes, scoped.rows
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(data.vectors), size=queries, replace=False)
    bm25 = store.keyword_index()
    parts = ("scope", "dense", "bm25", "path")
    timings: dict[str, dict[str, list[float]]] = {v: {p: [] for p in parts} for v in VARIANTS}
    recall: dict[str, dict[str, list[float]]] = {v: {"dense": [], "bm25": []} for v in VARIANTS}
    full = {v: {"dense": True, "bm25": True} for v in VARIANTS}
    outside = dict.fromkeys(VARIANTS, 0)
    warmup = 5
    for n, row in enumerate(picked):
        noise = rng.standard_normal(data.vectors.shape[1]).astype(np.float32)
        query = data.vectors[row] + 0.6 * noise / np.sqrt(len(noise))
        query /= np.linalg.norm(query)
        text = " ".join(rng.choice(data.texts[row].split(), size=QUERY_WORDS, replace=False))
        tokens = bm25.model.get_tokens_ids(tokenize(text))
        scores = np.asarray(bm25.model.get_scores_from_ids(tokens), dtype=np.float32)
        for variant in VARIANTS[n % 3 :] + VARIANTS[: n % 3]:  # each goes first in turn
            t0 = time.perf_counter()
            scope = lookups[variant]()
            t1 = time.perf_counter()
            dense = store.embedding_retrieval(query, top_k=K, scope=scope)
            t2 = time.perf_counter()
            keyword = store.bm25_retrieval(text, top_k=K, scope=scope)
            t3 = time.perf_counter()
            if n >= warmup:
                for part, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                    timings[variant][part].append(seconds)
            if scopes[variant] is not None:
                outside[variant] += sum(d.meta["doc_id"] not in scope for d in [*dense, *keyword])
            found = {int(d.id[1:]) for d in dense}
            recall[variant]["dense"].append(
                len(found & dense_truth(data, query, rows[variant])) / K
            )
            full[variant]["dense"] &= len(dense) == K
            want, tenth = bm25_truth(scores, rows[variant])
            # Ties at the 10th score make "the" top 10 ambiguous: a hit scoring at least the
            # exact 10th score is a correct one.
            good = sum(1 for d in keyword if d.score is not None and d.score >= tenth - 1e-4)
            recall[variant]["bm25"].append(good / want if want else 1.0)
            full[variant]["bm25"] &= len(keyword) == want
    assert not any(outside.values()), f"hits outside the scope: {outside}"

    def ratio(variant: str, part: str) -> float:
        return round(
            statistics.median(timings[variant][part]) / statistics.median(timings["none"][part]),
            3,
        )

    result: dict[str, Any] = {"queries_timed": len(picked) - warmup, "variants": {}}
    for variant in VARIANTS:
        t = timings[variant]
        result["variants"][variant] = {
            "scope_lookup": percentiles(t["scope"]),
            "dense": {
                **percentiles(t["dense"]),
                "recall_at_10": round(float(np.mean(recall[variant]["dense"])), 4),
                "full_top_10": full[variant]["dense"],
                "p50_ratio_vs_none": ratio(variant, "dense"),
            },
            "bm25": {
                **percentiles(t["bm25"]),
                "recall_at_10": round(float(np.mean(recall[variant]["bm25"])), 4),
                "full_top_k": full[variant]["bm25"],
                "p50_ratio_vs_none": ratio(variant, "bm25"),
            },
            # What one question's retrieval costs: scope lookup, dense and BM25 (hybrid).
            "lookup_dense_bm25": {
                **percentiles(t["path"]),
                "p50_ratio_vs_none": ratio(variant, "path"),
            },
            "hits_outside_scope": outside[variant],
        }
    return result


def measure(
    data: Collection,
    spec: IndexSpec,
    work: Path,
    queries: int,
    threads: list[int],
    ask_questions: int = 0,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """One index kind: built once, timed with each faiss thread count (0: faiss's default);
    with ``ask_questions``, full asks over the same passages too (:func:`measure_scaled_ask`)."""
    scoped, info = prepare(data, spec, work)
    default = faiss.omp_get_max_threads()
    runs = {}
    asked = None
    try:
        for count in threads:
            faiss.omp_set_num_threads(count or default)
            name = spec.index_type + ("" if not count else f", {count} faiss thread(s)")
            print(f"  {name} ...", flush=True)
            runs[name] = {
                "config": spec.index_type, **info, "faiss_threads": count or default,
                **time_queries(data, scoped, queries),
            }  # fmt: skip
        if ask_questions:
            print(f"  ask over {len(data.vectors):,} passages ...", flush=True)
            faiss.omp_set_num_threads(1)
            asked = measure_scaled_ask(data, scoped, work, ask_questions)
            asked |= {"index": info["index"], "faiss_threads": 1}
    finally:
        faiss.omp_set_num_threads(default)
        scoped.store.close()
    return runs, asked


def measure_scaled_ask(
    data: Collection, scoped: Scoped, work: Path, questions: int, seed: int = 11
) -> dict[str, Any]:
    """``QueryService.answer`` (question encoder, hybrid retrieval, shipped reader) over the
    synthetic passages, for the three callers side by side. The questions are words of a
    passage, so that BM25 finds passages; the reader reads the 10 passages retrieved (short
    synthetic ones: a real collection's longer passages make the reader, not the scope, slower)."""
    from pipelines.query import QueryService
    from pipelines.settings import Settings

    settings = Settings(home=work, reader_model=str(REPO_ROOT / "data" / "reader"))
    service = QueryService(settings)  # loads the saved store from work/index
    service.refresh()
    rng = np.random.default_rng(seed)
    asked = [
        "What is " + " ".join(rng.choice(data.texts[row].split(), size=3, replace=False)) + "?"
        for row in rng.choice(len(data.vectors), size=questions, replace=False)
    ]
    for variant in VARIANTS:  # warm-up: the first call pays lazy initialisation
        service.answer(asked[0], scope=scoped.scopes[variant])
    seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
    outside = 0
    for n, question in enumerate(asked):
        for variant in VARIANTS[n % 3 :] + VARIANTS[: n % 3]:
            scope = scoped.scopes[variant]
            started = time.perf_counter()
            outcome = service.answer(question, scope=scope)
            seconds[variant].append(time.perf_counter() - started)
            if scope is not None:
                outside += sum(p.meta.get("doc_id") not in scope for p in outcome.passages)
    assert outside == 0, f"{outside} passages outside the scope were read"
    none = statistics.median(seconds["none"])
    return {
        "questions": len(asked),
        "retrieval": settings.retrieval,
        "top_k_passages": settings.top_k_passages,
        "reader": str(service.reader_model),
        **{
            v: {
                **percentiles(seconds[v]),
                "p50_ratio_vs_none": round(statistics.median(seconds[v]) / none, 3),
            }
            for v in VARIANTS
        },
        "passages_outside_scope_read": outside,
    }


# -- a real ask on the demo collection ------------------------------------------------------------

DEMO_HIDDEN = ("hr/**", "it/**", "products/**")  # 24 of the 46 demo documents


def measure_ask(work: Path, questions: int) -> dict[str, Any]:
    from evaluation.squad import load_squad
    from indexer.run import index_folder
    from pipelines.query import QueryService
    from pipelines.settings import DEMO_COLLECTION, Settings

    settings = Settings(home=work / "demo-home", reader_model=str(REPO_ROOT / "data" / "reader"))
    started = time.perf_counter()
    summary = index_folder([DEMO_COLLECTION], settings, progress=False)
    index_s = time.perf_counter() - started
    rules = AccessRules.of(settings)
    for pattern in DEMO_HIDDEN:
        rules.allow(pattern, "restricted")
    cache = ScopeCache(rules)
    no_rules = ScopeCache(AccessRules(work / "bare-demo" / "access_rules.json"))
    viewer = Caller("viewer", Role.VIEWER, frozenset({"eng"}))
    service = QueryService(settings)
    service.refresh()
    store = service.store
    lookups = {
        "none": lambda: no_rules.for_store(viewer, store),
        "50%": lambda: cache.for_store(viewer, store),
    }
    visible = lookups["50%"]()
    assert visible is not None
    hidden = {r.doc_id for r in store.sources()} - visible
    examples, _ = load_squad(REPO_ROOT / "data" / "demo" / "labels" / "dev.json")
    asked = [ex.question for ex in examples][:questions]
    for variant in lookups:  # warm-up: the first call pays lazy initialisation
        service.answer(asked[0], scope=lookups[variant]())
    seconds: dict[str, list[float]] = {v: [] for v in lookups}
    cited_hidden = 0
    for n, question in enumerate(asked):
        for variant in ("none", "50%") if n % 2 == 0 else ("50%", "none"):
            started = time.perf_counter()
            outcome = service.answer(question, scope=lookups[variant]())
            seconds[variant].append(time.perf_counter() - started)
            if variant == "50%":
                cited_hidden += sum(p.meta.get("doc_id") in hidden for p in outcome.passages)
    assert cited_hidden == 0, f"{cited_hidden} passages of hidden documents were read"
    return {
        "documents": summary.total_documents,
        "passages": summary.total_passages,
        "hidden_documents": len(hidden),
        "index_s": round(index_s, 1),
        "questions": len(asked),
        "reader": str(service.reader_model),
        "top_k_passages": settings.top_k_passages,
        "none": percentiles(seconds["none"]),
        "50%": percentiles(seconds["50%"]),
        "p50_ratio_vs_none": round(
            statistics.median(seconds["50%"]) / statistics.median(seconds["none"]), 3
        ),
        "hidden_passages_read": cited_hidden,
    }


# -- report ---------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def table(result: dict[str, Any]) -> str:
    header = ("index", "scope", "docs", "passages", "lookup p50", "dense p50", "p95", "R@10",
              "ratio", "all ratio", "bm25 p50", "p95", "R@10", "ratio")  # fmt: skip
    lines = []
    for name, run in result["runs"].items():
        for variant, v in run["variants"].items():
            s = run["scopes"][variant]
            d, b = v["dense"], v["bm25"]
            lines.append((
                name, variant, f"{s['documents']:,}", f"{s['passages']:,}",
                _ms(v["scope_lookup"]["p50_ms"]), _ms(d["p50_ms"]), _ms(d["p95_ms"]),
                f"{d['recall_at_10']:.3f}", f"{d['p50_ratio_vs_none']:.2f}",
                f"{v['lookup_dense_bm25']['p50_ratio_vs_none']:.2f}", _ms(b["p50_ms"]),
                _ms(b["p95_ms"]), f"{b['recall_at_10']:.3f}", f"{b['p50_ratio_vs_none']:.2f}",
            ))  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    return "\n".join(out)


def readme_rows(result: dict[str, Any], command: str) -> list[dict[str, str]]:
    rows = []
    for run in result["runs"].values():
        none = run["variants"]["none"]
        parts = [
            f"no rules: dense p50 {_ms(none['dense']['p50_ms'])} ms (recall@10 "
            f"{none['dense']['recall_at_10']:.3f}), BM25 p50 {_ms(none['bm25']['p50_ms'])} ms, "
            f"lookup + dense + BM25 p50 {_ms(none['lookup_dense_bm25']['p50_ms'])} ms"
        ]
        for variant in ("1%", "50%"):
            v, s = run["variants"][variant], run["scopes"][variant]
            parts.append(
                f"{variant} visible: dense p50 {_ms(v['dense']['p50_ms'])} ms "
                f"({v['dense']['p50_ratio_vs_none']:.2f}x, recall@10 "
                f"{v['dense']['recall_at_10']:.3f}), BM25 {_ms(v['bm25']['p50_ms'])} ms "
                f"({v['bm25']['p50_ratio_vs_none']:.2f}x, recall@10 "
                f"{v['bm25']['recall_at_10']:.3f}), all three "
                f"{_ms(v['lookup_dense_bm25']['p50_ms'])} ms "
                f"({v['lookup_dense_bm25']['p50_ratio_vs_none']:.2f}x); scope lookup "
                f"{_ms(s['first_lookup_ms'])} ms first, {v['scope_lookup']['p50_ms']:.3f} ms cached"
            )
        rows.append({
            "what": (
                f"document permissions at {result['passages']:,} synthetic passages "
                f"({result['documents']:,} documents), {run['config']} index "
                f"({run['index']['factory']}, {run['faiss_threads']} faiss thread(s)): "
                f"retrieval with a caller's scope vs none, {run['queries_timed']} queries side "
                "by side"
            ),
            "number": "; ".join(parts) + "; no hit outside the scope",
            "command": command,
        })  # fmt: skip
    scaled = result.get("scaled_ask")
    if scaled:
        rows.append({
            "what": (
                f"`ask` over {result['passages']:,} synthetic passages "
                f"({scaled['index']['factory']}, {scaled['retrieval']} retrieval, shipped "
                f"reader, {scaled['questions']} questions side by side): a caller seeing 1% "
                "and 50% vs none"
            ),
            "number": (
                f"p50 {_ms(scaled['none']['p50_ms'])} ms none; 1% visible "
                f"{_ms(scaled['1%']['p50_ms'])} ms ({scaled['1%']['p50_ratio_vs_none']:.2f}x); "
                f"50% visible {_ms(scaled['50%']['p50_ms'])} ms "
                f"({scaled['50%']['p50_ratio_vs_none']:.2f}x); no passage outside the scope read"
            ),
            "command": command,
        })  # fmt: skip
    ask = result.get("demo_ask")
    if ask:
        rows.append({
            "what": (
                f"`ask` with a rule hiding {ask['hidden_documents']} of the "
                f"{ask['documents']} demo documents vs no rules (shipped reader, "
                f"{ask['questions']} demo dev questions, alternating)"
            ),
            "number": (
                f"p50 {_ms(ask['50%']['p50_ms'])} ms vs {_ms(ask['none']['p50_ms'])} ms "
                f"({ask['p50_ratio_vs_none']:.2f}x); no hidden passage read"
            ),
            "command": command,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--per-doc", type=int, default=10)
    parser.add_argument("--folders", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--configs", nargs="+", choices=("flat", "auto"), default=["flat", "auto"])
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[0, 1],
        help="faiss OpenMP threads per timing pass (0: faiss's default, all cores)",
    )  # fmt: skip
    parser.add_argument("--ask", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--ask-questions", type=int, default=20, help="demo questions")
    parser.add_argument(
        "--scaled-ask-questions", type=int, default=15,
        help="questions asked over the synthetic passages (first --configs index); 0: none",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "permissions.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    command = "python benchmarks/bench_permissions.py"
    if args.passages != 100_000:
        command += f" --passages {args.passages}"
    if not args.ask:
        command += " --no-ask"
    if args.queries != 200:
        command += f" --queries {args.queries}"
    if args.configs != ["flat", "auto"]:
        command += " --configs " + " ".join(args.configs)
    if args.scaled_ask_questions != 15:
        command += f" --scaled-ask-questions {args.scaled_ask_questions}"
    if args.ask and args.ask_questions != 20:
        command += f" --ask-questions {args.ask_questions}"
    if args.threads != [0, 1]:
        command += " --threads " + " ".join(map(str, args.threads))
    started = time.perf_counter()
    data = make_collection(args.passages, args.per_doc, args.folders)
    result: dict[str, Any] = {
        "benchmark": "permissions",
        "environment": environment(),
        "cpu": cpu_description(),
        "passages": args.passages,
        "documents": len(data.sources),
        "folders": args.folders,
        "data": (
            "SYNTHETIC: 384-d unit vectors (bench_scale's Gaussian mixture) and texts of 30 "
            "Zipf-drawn synthetic words per passage; queries: a stored vector plus noise, and 4 "
            "words of its text. Rules: '**' -> staff, 'f000/**' -> one (1%), 'f0[0-4]?/**' -> "
            "half (50%); callers: viewers in one, in half, and in a home without rules (none)."
        ),
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            print(f"{name} index over {args.passages:,} passages ...", flush=True)
            spec = IndexSpec(index_type=name)
            runs, asked = measure(
                data, spec, Path(tmp) / name, args.queries, args.threads,
                args.scaled_ask_questions if name == args.configs[0] else 0,
            )  # fmt: skip
            result["runs"] |= runs
            if asked is not None:
                result["scaled_ask"] = asked
        if args.ask:
            print("ask on the demo collection ...", flush=True)
            result["demo_ask"] = measure_ask(Path(tmp), args.ask_questions)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    # The load while this ran (other work on the machine weighs on every variant alike).
    end = [round(x, 2) for x in os.getloadavg()]
    result["environment"]["load_average_at_end"] = end
    result["note"] = (
        f"{end[0]:.1f} at the end, other work running: the variants timed side by side, query "
        "by query"
    )
    result["readme_rows"] = readme_rows(result, command)
    write_result(args.out, result)
    print(table(result))
    if "scaled_ask" in result:
        scaled = result["scaled_ask"]
        print(
            f"ask over {args.passages:,} passages: p50 "
            + ", ".join(
                f"{v} {scaled[v]['p50_ms']:.0f} ms ({scaled[v]['p50_ratio_vs_none']:.2f}x)"
                for v in VARIANTS
            )
        )
    if "demo_ask" in result:
        ask = result["demo_ask"]
        print(
            f"ask (demo, {ask['hidden_documents']}/{ask['documents']} documents hidden): p50 "
            f"{ask['50%']['p50_ms']:.0f} ms vs {ask['none']['p50_ms']:.0f} ms none "
            f"({ask['p50_ratio_vs_none']:.2f}x)"
        )
    env = result["environment"]
    print(f"{result['cpu']}; load average {env['load_average']} at start, "
          f"{env['load_average_at_end']} at end; {result['wall_s']} s")  # fmt: skip


if __name__ == "__main__":
    main()
