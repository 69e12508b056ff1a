"""What `assistant align retrieval` gains on questions it never trained on: cross-topic on a BEIR FAQ folder whose
queries carry a `class` (train on half the classes, judge on the other half over the whole corpus, both ways),
Chinese paraphrase transfer (train the multilingual encoder on paraphrase pairs, judge on another BEIR folder), and
the whole alignment on the FAQ folder, timed. Results in bench/results/align-retrieval-<time>.json and .md."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant bench align-retrieval --faq ../shared/data/bank_faq_retrieval_en
  assistant bench align-retrieval --zh-pairs ../shared/data/bq_corpus_zh/test.csv \\
      ../shared/data/atec_afqmc_zh/atec_nlp_sim_train.csv --zh-judged-on ../shared/data/bq_retrieval_zh
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from alignment.retrieval_training import EncoderTrainingConfig, RerankerTrainingConfig

    add_settings_flags(parser, ["--encoder"])
    parser.add_argument("--faq", help="BEIR folder whose queries.jsonl rows carry a `class` (cross-topic, timing)")
    parser.add_argument("--zh-pairs", nargs="+", default=[], metavar="FILE", help="Chinese paraphrase pair files")
    parser.add_argument("--zh-judged-on", metavar="DIR", help="BEIR folder the paraphrase-trained encoder is judged on")
    parser.add_argument("--zh-encoder", default="multilingual-e5-small", help="encoder the Chinese run starts from")
    parser.add_argument("--zh-limit", type=int, default=3000, help="paraphrase pairs sampled for training")
    parser.add_argument("--zh-epochs", type=int, default=1, help="epochs of the Chinese run (default 1)")
    parser.add_argument("--epochs", type=int, default=EncoderTrainingConfig().epochs)
    parser.add_argument("--hard-negatives", type=int, default=EncoderTrainingConfig().hard_negatives,
                        help="mined wrong passages per question")
    parser.add_argument("--reranker", action="store_true", help="also train a cross-encoder reranker")
    parser.add_argument("--reranker-epochs", type=int, default=RerankerTrainingConfig().epochs)
    parser.add_argument("--reranker-layers", type=int, default=RerankerTrainingConfig().layers,
                        help="layers of the encoder body the reranker keeps (default: all)")
    parser.add_argument("--skip-full", action="store_true", help="skip the timed alignment on the whole FAQ folder")
    parser.add_argument("--work", default="bench/work/align-retrieval",
                        help="where the timed alignment keeps its home (its registry: the promoted retrieval)")
    parser.add_argument("--out", default="bench/results", help="folder for the results")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(args: argparse.Namespace) -> int:
    import sys

    from alignment.bench.retrieval import run_benchmark

    if not args.faq and not (args.zh_pairs and args.zh_judged_on):
        print("error: nothing to measure: give --faq, or --zh-pairs with --zh-judged-on", file=sys.stderr)
        return 2
    return run_benchmark(args)
