"""Settings: defaults < YAML file < environment (ASSISTANT_*) < CLI flags, with where each value came from.

Environment variables are `ASSISTANT_<SECTION>__<KEY>` for nested keys (`ASSISTANT_VLLM__PORT=8100`)
and `ASSISTANT_<KEY>` for top-level ones (`ASSISTANT_ENGINE=transformers`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assistant.errors import AssistantError

ENV_PREFIX = "ASSISTANT_"
DEFAULT_CONFIG_FILE = "assistant.yaml"


class ConfigError(AssistantError, ValueError):
    """A configuration value is invalid; the message names the key, the value and its source."""


class SettingsSection(BaseModel):
    """The base of every settings section: unknown keys are refused, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def validation_problems(exc: ValidationError, values: dict[str, Any], sources: dict[str, str] | None = None) -> str:
    """One line per invalid value: the dotted key, the value given and where it came from, and what is wrong."""
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        shown = f"={values[key]!r}" if key in values else ""
        source = f" (from {sources.get(key, 'default')})" if sources is not None else ""
        problems.append(f"{key}{shown}{source}: {err['msg']}")
    return "; ".join(problems)


class VLLMSettings(SettingsSection):
    """The local vLLM engine (ignored when `llm_url` points at an external server)."""

    mode: Literal["in_process", "server"] = Field(
        "in_process", description="in_process: vLLM's engine client inside our API process (each question "
                                  "tokenised and each answer detokenised once, no HTTP hop), its engine core in a "
                                  "process of its own: first words as soon as from vLLM's own server at 16 "
                                  "clients; server: vLLM's OpenAI server as a managed process on `port`")
    host: str = Field("127.0.0.1", description="where the managed server listens (mode: server)")
    port: int = Field(8011, ge=1, le=65535, description="the managed server's port (mode: server)")
    dtype: str = Field("auto", description="vLLM --dtype; auto: bfloat16 on a CPU with bfloat16 instructions "
                                            "(AVX512-BF16, AMX: answers 1.5x faster than float32, what customers "
                                            "read the same), float32 on other CPUs, vLLM's choice on a GPU")
    block_size: int | None = Field(None, ge=16, description="KV-cache block in tokens (prefix caching reuses whole "
                                                            "blocks); None: 32 on a CPU, where vLLM's 128 never "
                                                            "reuses the ~115-token system prompt and rules, vLLM's "
                                                            "own on a GPU")
    max_model_len: int = Field(2048, ge=128)
    kv_cache_gb: float = Field(1.0, gt=0, description="VLLM_CPU_KVCACHE_SPACE on CPU")
    cpu_threads: str = Field("all", description="the cores vLLM's CPU backend computes on: 'all' (every core this "
                                                "process may use; measured fastest on 2 cores), 'auto' (vLLM's "
                                                "choice: it keeps one core for its scheduler) or a list ('0-3')")
    one_process: bool = Field(False, description="mode: server, vLLM's engine core inside its API server process "
                                                 "(VLLM_ENABLE_V1_MULTIPROCESSING=0): starts 8 s sooner on a CPU; "
                                                 "what the private engines of answer passes (align's gate, `eval "
                                                 "answers`) use, where one client sends every request")
    stream_interval: int = Field(4, ge=1, description="tokens per streamed piece of an answer after its first "
                                                      "(sent at once): each piece costs our API and vLLM's server "
                                                      "CPU, on a small machine the model's own; 4 keeps our API "
                                                      "as fast as vLLM direct at 16 clients (README: \"Our API in "
                                                      "front of vLLM\")")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    enforce_eager: bool = True
    startup_timeout_s: float = Field(300.0, gt=0)
    max_restarts: int = Field(5, ge=0)
    extra_args: list[str] = Field(default_factory=list, description="more vLLM options as on its command line "
                                                                    "('--max-num-seqs', '64'): engine options in "
                                                                    "either mode, server options in mode: server")


class TransformersSettings(SettingsSection):
    """The in-process transformers engine (continuous batching with a paged KV cache)."""

    kv_cache_tokens: int = Field(16384, ge=256, description="tokens the paged KV cache holds, all requests together")
    max_batch_tokens: int = Field(2048, ge=64, description="tokens processed in one forward pass")


class RetrievalSettings(SettingsSection):
    """Grounding answers in the company's documents."""

    enabled: bool = True
    encoder: str = Field("default", description="a packaged encoder name or a sentence-transformers folder")
    reranker: str | None = Field(None, description="a local cross-encoder folder, applied to the top candidates")
    sources: list[str] | None = Field(
        None, description="files/folders the knowledge base is built from on first serve, and kept in step with on "
                          "every start (files added, changed, deleted) while the index holds them (default: the "
                          "demo company's help center)")
    top_k: int = Field(4, ge=1, le=20, description="passages given to the model")
    source_tokens: int | None = Field(None, ge=32, description="the passage budget: most tokens of source text in "
                                                               "a prompt, each passage's least relevant sentences "
                                                               "cut first (null: as many as the context holds)")
    min_relevance: float = Field(0.45, ge=0, le=1, description="below it the assistant says it does not know "
                                                               "(English and other languages)")
    min_relevance_zh: float = Field(0.2, ge=0, le=1, description="the same for Chinese questions (measured: "
                                                                  "`assistant eval answers --json` dont_know_*)")
    hnsw_threshold: int = Field(50_000, ge=1, description="passages from which FAISS uses HNSW")
    chunk_chars: int = Field(900, ge=100, description="passage length documents are split into")
    chunk_overlap_chars: int = Field(120, ge=0, description="characters shared by neighbouring passages")
    candidates: int = Field(50, ge=1, description="taken from each of dense and lexical search before fusion")
    rerank_top: int = Field(20, ge=1, description="candidates the reranker reorders")
    dense_weight: float = Field(1.0, ge=0, description="weight of the dense ranking in the fusion")
    lexical_weight: float = Field(1.0, ge=0, description="weight of the BM25 ranking in the fusion")
    tie_margin: float = Field(0.01, ge=0, lt=1, description="fused scores within this share of each other are one "
                                                           "rank step apart: the passage naming the question's "
                                                           "proper names goes first, then the more relevant one "
                                                           "(0: exact ties only)")
    ground_openai_api: bool = Field(True, description="ground /v1/chat/completions too (per request: grounding)")


class AnswersSettings(SettingsSection):
    """How answers are made true: composed from the sources, or written by the model and checked sentence by
    sentence before anything is sent."""

    style: Literal["grounded", "generative", "auto"] = Field(
        "auto", description="grounded: quote the sentences of the sources that answer the question; generative: the "
                            "model writes, unsupported sentences are cut; auto: generative only for a model whose "
                            "measured supported-sentence rate reaches `generative_min_supported`")
    min_overlap: float = Field(0.6, ge=0, le=1, description="share of a sentence's content words a source sentence "
                                                            "must contain for the sentence to count as supported")
    min_kept_share: float = Field(0.5, ge=0, le=1, description="below this share of supported sentences a written "
                                                               "answer is replaced by the grounded one")
    generative_min_supported: float = Field(0.95, ge=0, le=1, description="what `auto` asks of a model before it "
                                                                          "lets it write answers")
    max_wait_s: float = Field(10.0, ge=0, description="when the model's queue would keep a customer waiting longer "
                                                      "than this for the first word, the answer is composed from the "
                                                      "sources at once (with none: a short busy reply offering a "
                                                      "human); 0: always wait")


class GenerationSettings(SettingsSection):
    """Defaults for answers; OpenAI-compatible requests may override them."""

    max_new_tokens: int = Field(128, ge=1, le=8192, description="longest answer in tokens: customers read 2-4 "
                                "sentences, and on the demo's golden set 128 against 256 gave fewer invented "
                                "numbers (0.40 vs 0.53) and 1.4x faster answers")
    temperature: float = Field(0.3, ge=0, le=2)
    top_p: float = Field(0.9, gt=0, le=1)
    repetition_penalty: float = Field(1.15, ge=1, le=2, description="discourages loops in small models (1 = off)")


HUMAN_REQUEST_PHRASES = [
    "talk to a human", "speak to a human", "talk to a person", "speak to a person", "real person", "human agent",
    "live agent", "talk to someone", "speak to someone", "representative", "转人工", "人工客服", "找人工", "真人",
]


class HandoffSettings(SettingsSection):
    """When the bot hands a conversation to a human; each handoff is recorded with its reason."""

    on_customer_request: bool = Field(True, description="the customer asks for a human (button or words)")
    request_phrases: list[str] = Field(default_factory=lambda: list(HUMAN_REQUEST_PHRASES),
                                       description="words that mean 'let me talk to a human' (case-insensitive)")
    on_no_source: bool = Field(False, description="hand off when retrieval finds nothing relevant (else only offer)")
    after_failed_answers: int = Field(2, ge=0, description="hand off after this many failed bot answers in a row "
                                                          "(no source or broken); 0 = never")


LOOPBACK = ("127.0.0.1", "::1", "localhost")


class AuthSettings(SettingsSection):
    """Who may call the API, how often, how much."""

    required: bool = Field(True, description="the API needs a key (`assistant keys create --scope api`); false is "
                                             "refused unless the server listens on loopback only")
    key_requests_per_minute: int = Field(600, ge=1, description="per API key")
    ip_requests_per_minute: int = Field(300, ge=1, description="per client address, on the API and public routes")
    login_attempts_per_minute: int = Field(10, ge=1, description="operator sign-in attempts per client address")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body, on every route")
    max_upload_bytes: int = Field(10_000_000, ge=1024, description="largest file upload (a request) to the operator "
                                                                   "console and sentiment view; the chat takes none")
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"],
                                       description="addresses or networks (10.0.0.0/8) whose X-Forwarded-For "
                                                   "names the real client")


class PrivacySettings(SettingsSection):
    """Customer data: how long it is kept; PII in logs and exports."""

    retention_days: float | None = Field(None, gt=0, description="delete conversations with no activity for this "
                                                                 "many days (checked hourly); none = keep")
    redact_logs: bool = Field(True, description="replace emails, phone, card and ID numbers in log lines")


class ReplicaSettings(SettingsSection):
    """Several `assistant serve` replicas on one PostgreSQL (assistant/shared_work.py)."""

    lease_ttl_s: float = Field(30, ge=1, description="shared work (sentiment monitor, retention, topics, recovery) "
                                                     "moves to another replica this long after its holder stops")


class ConsoleSettings(SettingsSection):
    """Operator console sign-ins."""

    session_idle_minutes: float = Field(480, gt=0, description="a session ends after this long without use")
    session_max_hours: float = Field(72, gt=0, description="and after this long in all, used or not")
    sign_in_attempts_before_pause: int = Field(5, ge=1, description="attempts on one username without a success "
                                               "before each further one waits (30 s, doubling up to 15 min)")


class InsightsSettings(SettingsSection):
    """What the support lead's Insights act on: curated answers served before the model."""

    curated_min_similarity: float = Field(
        0.9, ge=0, le=1, description="cosine similarity of a new question to a curated one from which the curated "
                                     "answer is served (measured: `assistant eval curated`)")
    curated_min_similarity_zh: float = Field(
        0.8, ge=0, le=1, description="the same for questions the encoder does not understand (Chinese with the "
                                     "default encoder): Dice similarity of their character pairs")
    curated_margin: float = Field(
        0.03, ge=0, le=1, description="a question within this much similarity of two curated questions whose answers "
                                      "differ is ambiguous: no curated answer, the model answers (measured: `assistant "
                                      "eval curated`)")


CHURN_WORDS = [
    "cancel my", "close my account", "switch to another", "unsubscribe", "complaint", "complain", "lawyer",
    "chargeback", "never again", "worst service", "report you", "scam",
    "投诉", "销户", "注销", "退订", "差评", "举报", "律师", "骗子", "再也不", "太差",
]


class ActionsSettings(SettingsSection):
    """The company's actions (README "Actions"); none: the assistant only talks."""

    file: str | None = Field(None, description="the actions file, e.g. data/orders/actions.yaml; use it with a "
                                               "model aligned on action decisions (`assistant align --actions`)")


class RecommendSettings(SettingsSection):
    """Recommendations inside the conversation (README "Recommendations"): never in place of a support answer."""

    mode: Literal["off", "ask", "invite"] = Field(
        "invite", description="'ask': only when the customer asks for a recommendation; 'invite': also when they "
                              "say they are looking for something the catalogue has; 'off'")
    max_items: int = Field(3, ge=1, le=10, description="items recommended in one answer")
    candidates: int = Field(20, ge=1, description="candidates gathered before the pick")
    shortlist: int = Field(8, ge=1, description="best candidates the chat model picks from")
    min_relevance: float = Field(0.4, ge=0, le=1, description="how well an item must match what was asked")
    min_word_relevance: float = Field(0.25, ge=0, le=1, description="the same where only words can match (Chinese "
                                                                     "with an English encoder): the share of the "
                                                                     "request's words the item has, and at least "
                                                                     "half the best item's")
    history_weight: float = Field(0.5, ge=0, description="weight of the customer's history against the request")
    model_picks: bool = Field(False, description="the chat model picks and orders the items (constrained to the "
                                                 "candidates' ids); off (default: the packaged model picks worse "
                                                 "than the candidates' order, README): the candidates' own order")
    catalog: list[str] | None = Field(None, description="catalogue files ingested at start while the store has no "
                                                        "item (default: the demo company's data/catalog; [] none)")
    interactions: list[str] | None = Field(None, description="interaction files imported with them (default: the "
                                                             "demo company's)")


class SentimentSettings(SettingsSection):
    """Scoring of customer messages (off the reply path, in batches), conversation rules, feed alerts."""

    enabled: bool = Field(True, description="score customer messages as they arrive")
    scorer: str = Field("current", description="'current' (promoted classifier, else lexicon), 'lexicon', "
                                               "a version (v2) or a classifier folder")
    interval_s: float = Field(1.0, gt=0, description="how often the scorer looks for new messages")
    batch_size: int = Field(64, ge=1)
    negative_turns: int = Field(2, ge=1, description="alert after this many negative customer turns in a row")
    drop: float = Field(1.0, gt=0, le=2, description="alert when the score falls this much from the best so far")
    churn_words: list[str] = Field(default_factory=lambda: list(CHURN_WORDS),
                                   description="words of churn or complaint (case-insensitive) that alert")
    handoff_on_alert: bool = Field(True, description="ask for a human when a conversation rule fires")
    feed_window: str = Field("1D", description="feed aggregation window (pandas offset: 1h, 6h, 1D, 7D)")
    feed_negative_share: float = Field(0.5, ge=0, le=1, description="alert when a window's negative share passes it")
    feed_jump: float = Field(0.25, ge=0, le=1, description="alert when the negative share jumps this much "
                                                          "against the mean of the previous windows")
    feed_baseline_windows: int = Field(7, ge=1)
    feed_min_items: int = Field(5, ge=1, description="windows with fewer items never alert")
    feeds: list[str] | None = Field(None, description="feed files ingested at start while no feed item is stored "
                                                      "(default: the demo company's data/feeds; [] for none)")


class Settings(SettingsSection):
    """Everything `assistant` reads from the user."""

    company_name: str = "Lumen Outfitters"
    link_domains: list[str] = Field(default_factory=list, description="the company's own sites (e.g. "
                                    "shop.example.com): links to them in answers stay live; links to any other site "
                                    "are shown as text (the sources' own pages always link)")
    system_prompt: str = (
        "You are the customer-support assistant of {company}. Answer briefly and politely. "
        "If you are not sure, say so and offer to connect the customer with a human agent."
    )
    model: str = Field("default", description="'default', an HF model folder, a .gguf file or a hub id")
    engine: Literal["vllm", "transformers"] = "vllm"
    llm_url: str | list[str] | None = Field(None, description="an external OpenAI-compatible server, e.g. "
                                            "http://host:8000/v1; several (a list, or comma-separated): each answer "
                                            "goes to the least busy one that is up")
    llm_api_key: str | None = None
    llm_tokenizer: str | None = Field(None, description="a local folder with the external server's tokenizer: "
                                      "prompts are fitted with exact counts (else a conservative estimate)")
    api_key: str | None = Field(None, description="the key `assistant chat` sends to a running server "
                                                  "(ASSISTANT_API_KEY)")
    home: Path = Field(Path("~/.assistant"), description="models cache, database and logs")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite file under home")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_message_chars: int = Field(4000, ge=1)
    max_history_messages: int = Field(20, ge=1)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    vllm: VLLMSettings = Field(default_factory=VLLMSettings)
    transformers: TransformersSettings = Field(default_factory=TransformersSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answers: AnswersSettings = Field(default_factory=AnswersSettings)
    sentiment: SentimentSettings = Field(default_factory=SentimentSettings)
    actions: ActionsSettings = Field(default_factory=ActionsSettings)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    insights: InsightsSettings = Field(default_factory=InsightsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    replicas: ReplicaSettings = Field(default_factory=ReplicaSettings)

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> Settings:
        if not self.auth.required and self.host not in LOOPBACK:
            raise ValueError(f"auth.required=false is accepted only when the server listens on loopback "
                             f"(127.0.0.1, ::1, localhost), not on {self.host}: make API keys instead")
        return self

    @property
    def llm_urls(self) -> list[str]:
        """The external servers `llm_url` names, in order (empty: start a local engine)."""
        urls = self.llm_url if isinstance(self.llm_url, list) else (self.llm_url or "").split(",")
        return [url.strip() for url in urls if url and url.strip()]

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def models_dir(self) -> Path:
        return self.home_dir / "models"

    @property
    def exports_dir(self) -> Path:
        return self.home_dir / "exports"

    @property
    def logs_dir(self) -> Path:
        return self.home_dir / "logs"

    @property
    def knowledge_dir(self) -> Path:
        return self.home_dir / "knowledge"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'assistant.db'}"

    def rendered_system_prompt(self) -> str:
        return self.system_prompt.replace("{company}", self.company_name)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _known_keys() -> set[str]:
    keys = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.update(f"{name}.{sub}" for sub in annotation.model_fields)
        else:
            keys.add(name)
    return keys


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    return flatten(data)


def _read_env(environ: dict[str, str]) -> dict[str, str]:
    flat = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and name != ENV_PREFIX + "CONFIG":
            flat[name[len(ENV_PREFIX):].lower().replace("__", ".")] = value
    return flat


class LoadedSettings(BaseModel):
    """Validated settings plus the source of every value (`default`, a file, `env NAME` or `flag`)."""

    settings: Settings
    sources: dict[str, str]


def load_settings(
    config_file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> LoadedSettings:
    """Merge the layers in precedence order and validate; errors name key, value and source."""
    environ = dict(os.environ if environ is None else environ)
    layers: list[tuple[str, dict[str, Any]]] = []
    path = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        layers.append((str(path), read_yaml(path)))
    layers.append(("env", _read_env(environ)))
    layers.append(("flag", {k: v for k, v in (flags or {}).items() if v is not None}))

    known = _known_keys()
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, values in layers:
        for key, value in values.items():
            label = f"env {ENV_PREFIX}{key.upper().replace('.', '__')}" if source == "env" else source
            if key not in known:
                raise ConfigError(f"unknown setting '{key}' (from {label}); known settings: {', '.join(sorted(known))}")
            merged[key] = value
            sources[key] = label
    try:
        settings = Settings.model_validate(nest(merged))
    except ValidationError as exc:
        raise ConfigError("invalid settings: " + validation_problems(exc, merged, sources)) from exc
    for key in known:
        sources.setdefault(key, "default")
    return LoadedSettings(settings=settings, sources=sources)


def settings_table(loaded: LoadedSettings) -> list[tuple[str, Any, str]]:
    """(key, value, source) rows for `assistant config show`, values as JSON types."""
    flat = flatten(loaded.settings.model_dump(mode="json"))
    return [(key, flat[key], loaded.sources[key]) for key in sorted(flat)]
