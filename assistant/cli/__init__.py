"""The `assistant` command. Subcommands are registered here, in one place, and imported only when run.

Each command module offers `add_arguments(parser)` and `run(args) -> int` and imports heavy libraries
inside `run`, so `assistant --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (words, module, one-line help)
COMMANDS: list[tuple[tuple[str, ...], str, str]] = [
    (("serve",), "assistant.cli.serve", "start the model, vLLM, the API and the chat page"),
    (("chat",), "assistant.cli.chat", "chat in the terminal with a running server or an in-process model"),
    (("ingest",), "assistant.cli.ingest", "ingest documents into the knowledge base (incremental)"),
    (("search",), "assistant.cli.search", "search the knowledge base"),
    (("config", "show"), "assistant.cli.config_show", "print the effective settings and where each came from"),
    (("align",), "alignment.cli.align", "train the model on transcripts and feedback (SFT, DPO), gate, promote"),
    (("sentiment", "train"), "assistant.cli.align_sentiment", "train the sentiment classifier, gate, promote"),
    (("align", "sentiment"), "assistant.cli.align_sentiment", "the former name of `assistant sentiment train`"),
    (("align", "recommend"), "assistant.cli.align_recommend", "retrain the recommender on stored interactions, "
                                                               "gate, promote"),
    (("align", "retrieval"), "alignment.cli.align_retrieval", "teach retrieval the company's questions: fine-tune, "
                                                              "gate, promote"),
    (("monitor", "ingest"), "assistant.cli.monitor_ingest", "score and store a news/comment feed; feed alerts"),
    (("monitor", "trends"), "assistant.cli.monitor_trends", "sentiment per time window (chats or feeds)"),
    (("monitor", "alerts"), "assistant.cli.monitor_alerts", "list sentiment alerts"),
    (("catalog", "ingest"), "assistant.cli.catalog_ingest", "ingest the product catalogue (incremental, all or "
                                                             "nothing)"),
    (("catalog", "interactions"), "assistant.cli.catalog_interactions", "import customers' views, carts, purchases "
                                                                         "and ratings"),
    (("operators",), "assistant.cli.operators", "operator accounts for the operator console"),
    (("keys",), "assistant.cli.keys", "widget keys (public, per website) and API keys (secret, scoped)"),
    (("gdpr",), "assistant.cli.gdpr", "erase a customer's data everywhere; apply the retention period"),
    (("curated",), "assistant.cli.curated", "answers the support team approved, served before the model"),
    (("models",), "assistant.cli.models", "list, show, promote and roll back model versions"),
    (("eval", "retrieval"), "assistant.cli.eval_retrieval", "evaluate retrieval on a BEIR folder"),
    (("eval", "answers"), "alignment.cli.eval_answers", "evaluate answers end to end against references"),
    (("eval", "actions"), "alignment.cli.eval_actions", "evaluate action calling: when to act, which action, "
                                                         "which arguments"),
    (("eval", "recommend"), "alignment.cli.eval_recommend", "evaluate recommenders leave-last-out: HR@10, NDCG@10, "
                                                             "coverage, beside popularity and co-occurrence"),
    (("eval", "sentiment"), "assistant.cli.eval_sentiment", "evaluate a sentiment scorer on a labelled file"),
    (("eval", "curated"), "assistant.cli.eval_curated", "how precise curated-answer matching is at each threshold"),
    (("eval", "topics"), "assistant.cli.eval_topics", "group labelled questions into topics as Insights does: NMI, "
                                                      "ARI, seconds"),
    (("bench", "serve"), "assistant.cli.bench_serve", "measure serving throughput and latency"),
    (("bench", "load"), "assistant.cli.bench_load", "simulated customers for a bounded time: latency, errors, no loss"),
    (("bench", "replicas"), "assistant.cli.bench_replicas", "2 replicas on one PostgreSQL, one killed: nothing lost, "
                                                            "shared limits and work"),
    (("bench", "actions"), "assistant.cli.bench_actions", "measure our overhead around an action's HTTP call"),
    (("bench", "retrieval"), "assistant.cli.bench_retrieval", "measure encoding, ingestion and search latency"),
    (("bench", "align"), "alignment.cli.bench_align", "align on a FAQ set; answer quality gain, training tokens/s"),
    (("bench", "align-retrieval"), "alignment.cli.bench_align_retrieval", "align retrieval cross-topic and on Chinese "
                                                                           "paraphrases; gain on unseen questions"),
    (("bench", "train"), "alignment.cli.bench_train", "SFT and DPO tokens/s against the machine's FLOP limit"),
    (("bench", "sentiment"), "assistant.cli.bench_sentiment", "sentiment accuracy vs targets, messages/s"),
    (("bench", "insights"), "assistant.cli.bench_insights", "Insights view sections on a store of 100k conversations"),
]

GROUP_HELP = {"config": "inspect the configuration",
              "catalog": "the product catalogue and customers' history with it (recommendations)",
              "monitor": "sentiment monitoring of chats and feeds",
              "sentiment": "the sentiment classifier",
              "bench": "benchmarks (results under bench/results/)",
              "eval": "evaluations (human table, or --json)"}

EPILOG = """examples:
  assistant serve                          # demo company, default model, vLLM, http://127.0.0.1:8000
  assistant serve --engine transformers    # no vLLM: in-process transformers engine
  assistant chat                           # talk to the running server from the terminal
  assistant ingest data/help-center        # build or update the knowledge base
  assistant search "how long do refunds take"
  assistant eval retrieval ../shared/data/bank_faq_retrieval_en
  assistant align --transcripts data/transcripts/lumen-support.jsonl
  assistant sentiment train --train labelled.jsonl --eval dev.jsonl
  assistant monitor ingest news.csv --source news
  assistant models list
  assistant config show
  assistant bench serve --concurrency 1,4,16 --json
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistant", description="Build and run a company's customer-service chat assistant.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="assistant 0.1.0")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    leaves: dict[str, argparse.ArgumentParser] = {}
    for words, module_name, help_text in COMMANDS:
        subparsers = top
        if len(words) == 2:
            if words[0] not in groups and words[0] in leaves:  # a command that also has subcommands (align)
                groups[words[0]] = leaves[words[0]].add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
            elif words[0] not in groups:
                group = top.add_parser(words[0], help=GROUP_HELP.get(words[0]))
                groups[words[0]] = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
            subparsers = groups[words[0]]
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(words[-1], help=help_text, description=module.__doc__,
                                    epilog=getattr(module, "EXAMPLES", None),
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
        if len(words) == 1:
            leaves[words[0]] = sub
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 0
    from assistant.errors import AssistantError
    from retrieval.errors import RetrievalError

    try:
        return args._run(args) or 0
    except (AssistantError, RetrievalError) as exc:  # the user's to fix: said on stderr, never mixed into --json
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
