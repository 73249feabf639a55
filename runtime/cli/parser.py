"""The command line's grammar: every verb, its arguments (each described), its examples, and the
rule that options go anywhere on the line."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from .. import __version__
from ..artifact import DEFAULT_SOURCE, PRECISIONS
from ..engine.int8_form import INT8_WEIGHTS
from ..engine.io import TASKS
from ..engine.session import PROVIDER_NAMES
from ..tasks.zero_shot import DEFAULT_TEMPLATE, ENGLISH_TEMPLATE

PROG = "albert-onnx"
DESCRIPTION = ("Export ALBERT models to ONNX (export, needs the [export] extra) and run them: fill-mask, score, "
               "predict (any task), batch (bulk jobs), serve (an HTTP server), bench and evaluate (accuracy).")
EXPORT_TASKS = ("auto", *TASKS)
INPUT_FORMATS = ("auto", "text", "jsonl")
LOG_LEVELS = ("debug", "info", "warning", "error")


class UsageError(Exception):
    """A command line that does not parse: exit status 2, one line, no usage dump."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse, with options anywhere among the positionals of a verb (``predict ART --precision
    int8 TEXT``), and errors raised as :class:`UsageError` so the caller prints one line."""

    _intermixed = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        # a verb's parser is called by the subparsers action through parse_known_args: parse its
        # line intermixed (parse_known_intermixed_args calls parse_known_args again, plainly)
        if self._intermixed or self._subparsers is not None:
            return super().parse_known_args(args, namespace)
        self._intermixed = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixed = False

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples keep their lines; defaults are said in each help text itself."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _artifact(p: argparse.ArgumentParser, uri: bool = False) -> None:
    where = " (ray, spark: or its URI)" if uri else ""
    p.add_argument("artifact", metavar="ARTIFACT", help=f"artifact folder written by `albert-onnx export`{where}")


def _int8_weights(p: Any) -> None:
    p.add_argument("--int8-weights", choices=INT8_WEIGHTS, default="auto",
                   help="int8 weight form in the session (default auto: the exact and fastest int8 kernel "
                        "on this CPU; int8 / uint8 force one, converted at load)")


def _model_options(p: Any, provider: bool = True) -> None:
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="which graph of the artifact runs (default fp32; int8 needs an export with --quantize "
                        "int8, fp16 one with --fp16)")
    if provider:
        p.add_argument("--provider", choices=PROVIDER_NAMES, default="cpu",
                       help="ONNX Runtime execution provider (default cpu; auto: cuda where available)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="ONNX Runtime threads (default: every core)")
    _int8_weights(p)


def _inputs(p: argparse.ArgumentParser, what: str = "texts") -> None:
    """TEXT arguments, -i FILE, '-' for stdin, and --json output: the inputs of a verb that runs texts."""
    g = p.add_argument_group("input and output")
    g.add_argument("texts", nargs="*", metavar="TEXT",
                   help=f"{what} to run; '-' reads them from stdin, one a line")
    g.add_argument("-i", "--input", action="append", default=[], metavar="FILE",
                   help="read inputs from FILE, one a line ('-': stdin); repeatable. A .jsonl file (or "
                        "--input-format jsonl) holds a JSON object a line: {\"text\": ...} and, by task, "
                        "\"text_pair\", \"question\", \"context\", \"choices\"")
    g.add_argument("--input-format", choices=INPUT_FORMATS, default="auto",
                   help="how lines of --input and stdin are read (default auto: JSON objects for .jsonl files "
                        "and for question answering and multiple choice, else one text a line)")
    g.add_argument("--json", action="store_true",
                   help="print JSON lines: one result a line, in the order of the inputs")


def _task_options(p: argparse.ArgumentParser, scoring: bool) -> None:
    """The per-task options of predict and batch, grouped by task."""
    g = p.add_argument_group("fill-mask and text classification")
    g.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="fill-mask: candidates per mask (default 5); text classification: labels per text "
                        "(default: the best one)")
    g.add_argument("--truncation", action="store_true",
                   help="text classification, feature extraction: cut texts longer than the model takes")
    if scoring:
        g = p.add_argument_group("scoring (--task score on fill-mask artifacts)")
        g.add_argument("--per-token", action="store_true", help="the log-probability of every token")
    g = p.add_argument_group("text classification")
    g.add_argument("--all-labels", action="store_true", help="every label, best first")
    g.add_argument("--function-to-apply", choices=["softmax", "sigmoid", "none"], default=None,
                   help="the scores' function (default: from the model's problem type)")
    g.add_argument("--text-pair", action="append", default=None, metavar="PAIR",
                   help="second text of each pair, once per TEXT (pairs: JNLI, JSTS)")
    g = p.add_argument_group("token classification")
    g.add_argument("--aggregation-strategy", choices=["none", "simple", "first", "average", "max"],
                   default="none", help="how tokens merge into entities (default none)")
    g.add_argument("--stride", type=int, default=None, metavar="N",
                   help="tag long texts in windows sharing N tokens (needs an aggregation strategy)")
    g = p.add_argument_group("feature extraction")
    g.add_argument("--pooling", choices=["cls", "mean", "none"], default="cls",
                   help="one vector per text from [CLS] or the mean, or none: one per token (default cls)")
    g.add_argument("--normalize", action="store_true", help="unit-length vectors")
    g = p.add_argument_group("question answering (--question and --context, or JSON lines)")
    g.add_argument("--question", action="append", default=None, metavar="Q", help="a question; repeatable")
    g.add_argument("--context", action="append", default=None, metavar="C",
                   help="the context, once, or once per --question")
    g.add_argument("--doc-stride", type=int, default=None, metavar="N",
                   help="tokens shared by windows of a long context")
    g.add_argument("--max-answer-len", type=int, default=15, metavar="N",
                   help="longest answer in tokens (default 15)")
    g.add_argument("--max-seq-len", type=int, default=None, metavar="N", help="tokens per window")
    g.add_argument("--handle-impossible-answer", action="store_true", help="the empty answer may win")
    g.add_argument("--no-align-to-words", dest="align_to_words", action="store_false",
                   help="answers exactly as predicted, not grown to space-separated words (what unspaced "
                        "Japanese wants)")
    g = p.add_argument_group("multiple choice (TEXT is the question)")
    g.add_argument("--choices", nargs="+", default=None, metavar="CHOICE",
                   help="the choices of each question (put TEXT before them, or end them with --)")
    g = p.add_argument_group("zero-shot classification (on an NLI classifier)")
    g.add_argument("--labels", default=None, metavar="A,B,...", help="comma-separated candidate labels")
    g.add_argument("--hypothesis-template", default=DEFAULT_TEMPLATE, metavar="T",
                   help=f"the hypothesis, {{}} where the label goes (default {DEFAULT_TEMPLATE!r}; the "
                        f"transformers pipeline's English one is {ENGLISH_TEMPLATE!r})")
    g.add_argument("--multi-label", action="store_true", help="score each label on its own")


def _verb(sub: Any, name: str, help: str, *examples: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                                                epilog=_examples(*examples), formatter_class=_Formatter)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="on failure, print the traceback too")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    p = Parser(prog=PROG, description=DESCRIPTION, formatter_class=_Formatter,
               epilog=_examples("albert-onnx export ken11/albert-base-japanese-v1 -o albert-ja --quantize int8",
                                "albert-onnx fill-mask albert-ja '大学で[MASK]の研究をしています' --precision int8",
                                "albert-onnx VERB --help        every verb's arguments and examples",
                                "albert-onnx completion bash   shell completion (bash, zsh)"))
    p.add_argument("--version", action="version", version=f"albert-onnx {__version__}")
    p.add_argument("--debug", action="store_true", help="on failure, print the traceback too")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    e = _verb(sub, "export", "export a Hugging Face ALBERT checkpoint to an artifact folder",
              "albert-onnx export ken11/albert-base-japanese-v1 -o albert-ja --quantize int8",
              "albert-onnx export ./my-finetune -o my-cls --quantize int8 --int8-min-agreement 0.95",
              "albert-onnx export ./my-albert -o my-fe --task feature-extraction --fp16",
              "albert-onnx export ./my-jcqa -o my-jcqa --quantize int8 --eval-data valid-v1.3.json --max-drop 0.5")
    e.add_argument("source", nargs="?", default=DEFAULT_SOURCE, metavar="SOURCE",
                   help=f"hub id or local model folder (default {DEFAULT_SOURCE})")
    e.add_argument("-o", "--output", required=True, metavar="OUT", help="artifact folder to create")
    e.add_argument("--task", choices=EXPORT_TASKS, default="auto",
                   help="the head to export (default auto: from the checkpoint's architecture)")
    e.add_argument("--quantize", choices=["int8"], help="also write a dynamic int8 graph")
    e.add_argument("--int8-min-agreement", type=float, default=None, metavar="X",
                   help="int8 gate for the task (default: fill-mask top-1 0.90, classification top label "
                        "0.97, embeddings mean cosine 0.99); 0 turns it off")
    e.add_argument("--int8-weights", choices=["int8", "uint8"], default="int8",
                   help="weight form stored in the int8 file (default int8, what VNNI / AMX and ARM CPUs run as it "
                        "is). Either form serves every CPU with the same answers: the runtime converts it at load")
    e.add_argument("--eval-data", metavar="FILE", default=None,
                   help="accuracy-aware int8: validation data (as `albert-onnx evaluate` reads it) on which int8 "
                        "may lose at most --max-drop points; the products that cost most stay in float until it "
                        "does, or the export fails (replaces the sample-text gate)")
    e.add_argument("--max-drop", type=float, default=0.5, metavar="D",
                   help="with --eval-data: points (the metric x 100: F1, accuracy, Pearson) int8 may lose against "
                        "fp32 (default 0.5)")
    e.add_argument("--fp16", action="store_true", help="also write a float16 graph (for CUDA)")
    e.add_argument("--web", action="store_true",
                   help="also write web/: standard graphs and tokenizer.json (with the [MASK] fix) for "
                        "transformers.js, optimum and ONNX Runtime's other bindings")
    e.add_argument("--opset", type=int, default=17, metavar="N", help="ONNX opset (default 17)")
    e.add_argument("--revision", metavar="REV", help="hub revision: branch, tag or commit")
    e.add_argument("--atol", type=float, default=1e-4, metavar="A",
                   help="largest |Δ| of the outputs against PyTorch accepted (default 1e-4)")
    e.add_argument("--force", action="store_true", help="replace an existing output folder")

    f = _verb(sub, "fill-mask", "predict the [MASK] tokens of texts (fill-mask artifacts)",
              "albert-onnx fill-mask albert-ja '大学で[MASK]の研究をしています' --top-k 3",
              "albert-onnx fill-mask --precision int8 albert-ja '吾輩は[MASK]である。' --json",
              "cat texts.txt | albert-onnx fill-mask albert-ja - --json > answers.jsonl")
    _artifact(f)
    _inputs(f)
    _model_options(f)
    f.add_argument("--top-k", type=int, default=5, metavar="K", help="candidates per mask (default 5)")

    s = _verb(sub, "score", "pseudo-log-likelihood of texts (fill-mask artifacts)",
              "albert-onnx score albert-ja '吾輩は猫である。' '吾輩は犬である。'",
              "albert-onnx score albert-ja --per-token '吾輩は猫である。'",
              "albert-onnx score albert-ja -i sentences.txt --json")
    _artifact(s)
    _inputs(s)
    _model_options(s)
    s.add_argument("--per-token", action="store_true", help="the log-probability of every token")

    r = _verb(sub, "predict", "run whatever task the artifact holds on texts (or questions)",
              "albert-onnx predict wagahai-cls --precision int8 '「おい、こら」と主人が言った。'",
              "albert-onnx predict wagahai-qa --question '誰が言った？' --context '「おい」と主人が言った。'",
              "albert-onnx predict wagahai-mc '猫の名前は？' --choices まだ無い 三毛子 黒",
              "albert-onnx predict wagahai-nli '猫が寝ている。' --labels 動物,天気",
              "albert-onnx predict wagahai-ner -i texts.txt --aggregation-strategy simple --json")
    _artifact(r)
    _inputs(r, "texts (multiple choice: questions)")
    _model_options(r)
    _task_options(r, scoring=False)

    b = _verb(sub, "batch", "run an artifact's task over a file or folder of texts, into Parquet",
              "albert-onnx batch wagahai-cls texts.txt -o out/",
              "albert-onnx batch albert-ja texts.jsonl -o scores/ --task score --precision int8",
              "albert-onnx batch s3://bucket/model s3://bucket/in/*.parquet -o s3://bucket/out --engine ray")
    _artifact(b, uri=True)
    b.add_argument("input", metavar="INPUT",
                   help=".txt (a text a line, UTF-8), .jsonl or .parquet file, or a folder of them "
                   "(ray, spark: or a glob, and URIs: file://, s3://, gs://, hdfs://...)")
    b.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder of Parquet parts (ray, spark: or a URI)")
    b.add_argument("--engine", choices=["local", "ray", "spark"], default="local",
                   help="where it runs (default local: worker processes on this machine)")
    b.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes / actors (default: cores / threads; ray and spark: 2)")
    b.add_argument("--threads", type=int, default=None, metavar="N",
                   help="ONNX Runtime threads per worker (default: cores / workers; ray and spark: 1)")
    b.add_argument("--text-column", default="text", metavar="NAME",
                   help="the text's column or key in .jsonl and .parquet (default text)")
    b.add_argument("--id-column", default="id", metavar="NAME",
                   help="the row id's column or key, copied to the output (default id; else the row number)")
    b.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="which graph of the artifact runs (default fp32)")
    b.add_argument("--provider", choices=PROVIDER_NAMES, default="cpu", help="local engine only (default cpu)")
    _int8_weights(b)
    b.add_argument("--task", choices=["auto", "score"], default="auto",
                   help="score: pseudo-log-likelihood on a fill-mask artifact (default: the artifact's task)")
    b.add_argument("--part-rows", type=int, default=2000, metavar="N",
                   help="rows per output part (and per engine task; default 2000)")
    b.add_argument("--resume", action="store_true",
                   help="ray, spark: finish an unfinished run of the same job, and keep this run's parts if it "
                        "fails (the local engine always resumes)")
    b.add_argument("--address", default=None, help="ray engine: join this cluster (default: start a local one)")
    b.add_argument("--runtime-env", default=None, metavar="JSON",
                   help="ray engine: the workers' runtime_env, as JSON (for example their pip packages)")
    b.add_argument("--master", default=None, metavar="URL",
                   help="spark engine: master URL (default local[workers], or spark-submit's)")
    b.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="spark engine: a Spark setting (spark.pyspark.python=..., spark.archives=...); repeatable")
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _task_options(b, scoring=True)

    m = _verb(sub, "bench", "latency, throughput, cold start and memory of an artifact (light install)",
              "albert-onnx bench albert-ja --precision fp32 --precision int8",
              "albert-onnx bench albert-ja --precision int8 --json bench.json --markdown \"$GITHUB_STEP_SUMMARY\"",
              "albert-onnx bench albert-ja --baseline bench-main.json --max-slowdown 1.3")
    _artifact(m)
    m.add_argument("--precision", action="append", choices=PRECISIONS, default=None,
                   help="precision to time; repeat for several (default fp32)")
    m.add_argument("--lengths", default=None, metavar="N,N,...",
                   help="comma-separated token counts (default 8,16,32,64,128, those the model takes)")
    m.add_argument("--batch", type=int, default=32, metavar="N", help="texts in the throughput run (default 32)")
    m.add_argument("--threads", type=int, default=None, metavar="N", help="ONNX Runtime threads (default: every core)")
    _int8_weights(m)
    m.add_argument("--calls", type=int, default=30, metavar="N",
                   help="calls per round at 32 tokens or fewer (default 30)")
    m.add_argument("--rounds", type=int, default=3, metavar="N", help="rounds of calls (default 3)")
    m.add_argument("--no-cold-start", action="store_true", help="skip the cold-start and memory run")
    m.add_argument("--json", dest="json_file", metavar="FILE", help="write the report as JSON")
    m.add_argument("--markdown", metavar="FILE", help="write the report as Markdown (for CI summary pages)")
    m.add_argument("--baseline", metavar="OLD.json", help="fail when a figure regressed against this report")
    m.add_argument("--max-slowdown", type=float, default=1.25, metavar="R",
                   help="with --baseline: the largest normalized slow-down accepted (default 1.25)")

    a = _verb(sub, "evaluate", "an artifact's accuracy on JGLUE data (or yours): fp32 and int8 side by side",
              "albert-onnx evaluate my-jsquad jsquad-v1.3/valid-v1.3.json",
              "albert-onnx evaluate my-jcqa valid-v1.3.json --fail-over 0.5 --markdown \"$GITHUB_STEP_SUMMARY\"",
              "albert-onnx evaluate my-cls dev.jsonl --precision int8 --json report.json")
    _artifact(a)
    a.add_argument("data", metavar="DATA",
                   help="JSQuAD (SQuAD-style JSON), JCommonsenseQA, JNLI, JSTS or MARC-ja JSON lines as JGLUE ships "
                        "them, or JSON lines / Parquet with text, optional text_pair, and label or answers "
                        "(choices and label for multiple choice)")
    a.add_argument("--precision", action="append", choices=PRECISIONS, default=None,
                   help="a graph to evaluate; repeat for several, the first is the baseline (default: fp32, and "
                        "int8 when the artifact has it)")
    a.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N examples")
    a.add_argument("--threads", type=int, default=None, metavar="N", help="ONNX Runtime threads (default: every core)")
    _int8_weights(a)
    a.add_argument("--fail-over", type=float, default=None, metavar="DROP",
                   help="exit with status 1 when int8 loses more than DROP points (the metric x 100) of the task's "
                        "metric (F1, accuracy, Pearson) against fp32")
    a.add_argument("--json", dest="json_file", metavar="FILE", help="write the report as JSON ('-': stdout)")
    a.add_argument("--markdown", metavar="FILE", help="write the report as Markdown (for CI summary pages)")
    a.add_argument("--show", type=int, default=5, metavar="N",
                   help="examples answered differently to print (default 5; the reports list up to 10)")
    a.add_argument("--quiet", action="store_true", help="no progress bar")

    v = _verb(sub, "serve", "an HTTP server for the artifact (needs the [serve] extra)",
              "albert-onnx serve albert-ja --precision int8 --port 8000",
              "ALBERT_KEY=secret albert-onnx serve wagahai-cls --api-key-env ALBERT_KEY --host 0.0.0.0",
              "albert-onnx serve wagahai-nli --task zero-shot-classification --log-level info --no-access-log")
    _artifact(v)
    v.add_argument("--task", choices=["zero-shot-classification"], default=None,
                   help="serve an NLI classifier as zero-shot classification (default: the artifact's task)")
    _model_options(v)
    v.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    v.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    v.add_argument("--max-batch-size", type=int, default=32, metavar="N",
                   help="inputs merged into one model run (default 32)")
    v.add_argument("--max-wait-ms", type=float, default=0.0, metavar="MS",
                   help="fp32/fp16: how long a request waits for others to share its run (default 0)")
    v.add_argument("--max-queue", type=int, default=64, metavar="N",
                   help="waiting requests beyond which the answer is 503 (default 64)")
    v.add_argument("--max-inputs", type=int, default=2048, metavar="N",
                   help="inputs one request may hold (413 beyond; default 2048, as OpenAI's embeddings take)")
    v.add_argument("--max-request-tokens", type=int, default=131072, metavar="N",
                   help="what one request may cost, counting every text, pair, label, choice and window, a token "
                        "per character (413 beyond; default 131072: 2048 sentences of 64)")
    v.add_argument("--max-body-bytes", type=int, default=2_000_000, metavar="N",
                   help="the largest request body (413 beyond; default 2000000)")
    v.add_argument("--model-name", default=None, metavar="NAME",
                   help="the model name OpenAI's routes serve and /info shows (default: the artifact folder's name)")
    v.add_argument("--read-timeout", type=float, default=30.0, metavar="S",
                   help="how long a client may take to send a request's headers and body (408 beyond; default 30)")
    v.add_argument("--max-header-bytes", type=int, default=65536, metavar="N",
                   help="the largest request line and headers (431 beyond; default 65536)")
    v.add_argument("--ready-deadline", type=float, default=30.0, metavar="S",
                   help="/ready answers 503 once the model has had work and finished no run for S seconds "
                        "(default 30)")
    v.add_argument("--no-ui", dest="ui", action="store_false",
                   help="no page to try the model at / (the API page /docs stays)")
    v.add_argument("--api-key-env", default=None, metavar="NAME",
                   help="environment variable holding the key requests send as 'Authorization: Bearer KEY'")
    v.add_argument("--drain-seconds", type=float, default=30.0, metavar="S",
                   help="on SIGTERM: the most the shutdown takes, whatever the clients do: requests in flight "
                        "finish within it, half-sent ones are cut (default 30)")
    v.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                   help="the server's log on stderr (default info: start, shutdown and the access log)")
    v.add_argument("--no-access-log", dest="access_log", action="store_false",
                   help="no line per request (the access log is in the Common Log Format)")
    v.add_argument("--engine", choices=["uvicorn", "ray"], default="uvicorn",
                   help="ray: a Ray Serve application of --replicas copies (needs ray[serve]; default uvicorn)")
    v.add_argument("--replicas", type=int, default=1, metavar="N",
                   help="ray engine: copies of the model (one per core or two; default 1)")
    v.add_argument("--address", default=None, help="ray engine: join this cluster (default: a local Ray)")

    c = _verb(sub, "completion", "print a shell completion script",
              "albert-onnx completion bash > ~/.local/share/bash-completion/completions/albert-onnx",
              "eval \"$(albert-onnx completion bash)\"      # this shell only",
              "eval \"$(albert-onnx completion zsh)\"       # in ~/.zshrc, after compinit")
    c.add_argument("shell", choices=["bash", "zsh"], help="the shell: bash or zsh")
    return p
