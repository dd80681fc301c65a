"""`make bench`: run every benchmark, each writing JSON to benchmarks/results/."""

from __future__ import annotations

import sys

from benchmarks import (
    dialogue_bench,
    engine_bench,
    finetune_bench,
    generalisation_bench,
    large_bench,
    lm_bench,
    nlu_bench,
    scaling_bench,
    serve_bench,
    spacy_bench,
)


def main() -> None:
    quick = "--quick" in sys.argv
    engine_bench.main(["--config", "minimal"] if quick else [])
    nlu_bench.main(["--quick"] if quick else [])
    lm_bench.main(["--quick"] if quick else [])
    generalisation_bench.main(["--quick", "--cases", "nlu-data-restaurant"] if quick else [])
    scaling_bench.main(["--sizes", "500,1000", "--epochs", "2", "--skip-jobs"] if quick else [])
    dialogue_bench.main(["--assistants", "rasa-init", "--configs", "default", "--name", "dialogue-quick"] if quick else [])
    finetune_bench.main(["--nlu", "", "--name", "finetune-quick"] if quick else [])
    large_bench.main(["--size", "500", "--epochs", "2", "--test-size", "300", "--ted-epochs", "1",
                                "--name", "large-quick"] if quick else [])
    serve_bench.main(["--requests", "20", "--conversations", "2", "--name", "serve-quick"] if quick else [])
    spacy_bench.main(["--words", "2000", "--width", "50", "--parse-seconds", "0.2", "--name", "spacy-quick"]
                     if quick else [])


if __name__ == "__main__":
    main()
