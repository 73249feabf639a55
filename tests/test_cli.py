"""The CLI, run in-process through main(argv) and, where a real pipe or shell matters, as a
subprocess: options anywhere, inputs from arguments, files and stdin, JSON lines, one line per
failure with its exit status, help with examples, shell completion."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from albert_onnx import pipeline
from albert_onnx.cli import main
from albert_onnx.cli.failures import cli_words, flags
from albert_onnx.cli.parser import build_parser

from .conftest import head_artifact, json_lines

CLI = [sys.executable, "-m", "albert_onnx.cli"]


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([*CLI, *args], input=stdin, capture_output=True, timeout=120)
    return subprocess.CompletedProcess(res.args, res.returncode, res.stdout.decode("utf-8", "replace"),
                                       res.stderr.decode("utf-8", "replace"))


@pytest.fixture(scope="module")
def cls_art(spm_albert: Path, heads_root: Path) -> Path:
    return head_artifact("cls", spm_albert, heads_root)[1]


def test_fill_mask_json_lines(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = ["吾輩は[MASK]である。", "大学で[MASK]の研究を[MASK]しています"]
    assert main(["fill-mask", str(tiny_artifact), *texts, "--top-k", "3", "--json"]) == 0
    doc = json_lines(capsys.readouterr().out)
    assert len(doc) == 2 and [len(t) for t in doc] == [1, 2]
    for text in doc:
        for mask in text:
            assert len(mask) == 3
            assert all(set(c) == {"token", "token_str", "score"} for c in mask)
            assert [c["score"] for c in mask] == sorted((c["score"] for c in mask), reverse=True)


def test_fill_mask_table_and_precision(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fill-mask", str(tiny_artifact), "吾輩は[MASK]", "--precision", "int8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("吾輩は[MASK]\n  [MASK] #1:\n    1. ")
    assert out.count("\n    ") == 5


@pytest.mark.parametrize("order", [
    ["{art}", "--precision", "int8", "{text}"],
    ["--precision", "int8", "{art}", "{text}"],
    ["{art}", "{text}", "--precision", "int8"],
    ["{art}", "--precision", "int8", "--", "{text}"],
    ["--json", "{art}", "--precision=int8", "{text}", "--top-k", "2"],
])
def test_options_go_anywhere(cls_art: Path, capsys: pytest.CaptureFixture[str], order: list[str]) -> None:
    text = "「おい、こら」と主人が言った。"
    argv = ["predict", *(a.format(art=cls_art, text=text) for a in order)]
    assert main(argv if "--json" in argv else ["predict", "--json", *argv[1:]]) == 0, capsys.readouterr().err
    top_k = 2 if "--top-k" in argv else 1
    assert json_lines(capsys.readouterr().out) == [pipeline(cls_art, precision="int8")(text, top_k=top_k)]


def test_a_dash_text_after_double_dash(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(tiny_artifact), "--json", "--", "--x--"]) == 0
    assert len(json_lines(capsys.readouterr().out)) == 1


def test_inputs_from_files_and_stdin_equal_one_at_a_time(cls_art: Path, tmp_path: Path) -> None:
    """A file, stdin, and JSON lines give, line by line, what the Python predictor gives each text alone."""
    texts = ["吾輩は猫である。", "名前はまだ無い。", "", "どこで生れたかとんと見当がつかぬ。"]
    (tmp_path / "t.txt").write_text("\n".join(texts) + "\r\n", encoding="utf-8")
    clf = pipeline(cls_art)
    want = [clf(t) for t in texts if t]
    res = run_cli("predict", str(cls_art), "-i", str(tmp_path / "t.txt"), "--json")
    assert res.returncode == 0, res.stderr
    assert json_lines(res.stdout) == want
    res = run_cli("predict", str(cls_art), "-", "--json", stdin="\n".join(texts).encode())
    assert res.returncode == 0 and json_lines(res.stdout) == want
    res = run_cli("predict", str(cls_art), "--json", "-i", "-", stdin="\n".join(texts).encode())
    assert json_lines(res.stdout) == want
    pairs = [{"text": "吾輩は猫", "text_pair": "である"}, {"text": "名前は"}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in pairs), encoding="utf-8")
    res = run_cli("predict", str(cls_art), "--json", "-i", str(tmp_path / "p.jsonl"), "--all-labels")
    assert json_lines(res.stdout) == [clf(pairs[0], top_k=None), clf("名前は", top_k=None)]
    # arguments first, then each file in order
    res = run_cli("predict", str(cls_art), "吾輩は猫である。", "-i", str(tmp_path / "t.txt"), "--json")
    assert json_lines(res.stdout) == [clf("吾輩は猫である。"), *want]


def test_structured_tasks_read_json_lines(spm_albert: Path, heads_root: Path, tmp_path: Path) -> None:
    from albert_onnx import MultipleChoice, QuestionAnswerer

    _, qa = head_artifact("qa", spm_albert, heads_root)
    _, mc = head_artifact("mc", spm_albert, heads_root)
    rows = [{"question": "誰が？", "context": "主人が言った。"}, {"question": "何を？", "context": "猫が鼠を捕る。"}]
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    res = run_cli("predict", str(qa), "-", "--json", stdin=data)
    assert res.returncode == 0, res.stderr
    assert json_lines(res.stdout) == [QuestionAnswerer(qa)(**r) for r in rows]
    res = run_cli("predict", str(qa), "-", stdin=data)  # human: the answer and its span under the question
    assert res.stdout.startswith("誰が？ / 主人が言った。\n  ")
    choices = json.dumps({"question": "猫の名前は？", "choices": ["まだ無い", "三毛子"]}, ensure_ascii=False)
    res = run_cli("predict", str(mc), "--json", "-", stdin=choices.encode())
    assert json_lines(res.stdout) == [MultipleChoice(mc)("猫の名前は？", ["まだ無い", "三毛子"])]


def test_a_long_text_through_stdin_and_a_short_echo(cls_art: Path) -> None:
    """100,000 characters: more than a command line takes, fine through stdin; the human output
    echoes the start of it, not all of it."""
    text = "吾輩は猫である。" * 12_500
    res = run_cli("predict", str(cls_art), "-", "--truncation", stdin=text.encode())
    assert res.returncode == 0, res.stderr
    head, label = res.stdout.splitlines()
    assert head.endswith("… (100000 characters)") and len(head) < 80
    assert label.split()[0] == pipeline(cls_art)(text, truncation=True)[0]["label"]
    res = run_cli("predict", str(cls_art), "-", stdin=text.encode())
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "the model takes at most 64; pass --truncation to cut it" in res.stderr


def test_binary_stdin_is_refused(cls_art: Path) -> None:
    res = run_cli("predict", str(cls_art), "-", stdin=b"\x7fELF\x02\x01\x01\x00\x00\x00\n")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == ("albert-onnx: error: stdin line 1 holds a NUL character: not a UTF-8 text file (a binary "
                          "file?); inputs are UTF-8 text, one a line, or .jsonl / .parquet\n")


def test_export_command(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "art"
    assert main(["export", str(tiny_model), "-o", str(out), "--opset", "17"]) == 0
    text = capsys.readouterr().out
    assert "fp32 check against PyTorch: max|Δ| = " in text and (out / "manifest.json").exists()
    assert main(["export", str(tiny_model), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(tiny_model), "-o", str(tmp_path / "b"), "--opset", "5"]) == 1


def test_export_without_heavy_side_names_the_extra(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "from albert_onnx.cli import main\n"
            f"raise SystemExit(main(['export', 'x', '-o', {str(tmp_path / 'o')!r}]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 1
    assert "pip install 'albert-onnx[export]'" in res.stderr and "Traceback" not in res.stderr


# every verb, wrong: (argv with {fm} = a fill-mask artifact, {cls} = a classifier, {tmp} = a folder;
# the exit status; a piece of the one line)
WRONG = [
    ([], 2, "choose a command: export, fill-mask"),
    (["nosuchverb"], 2, "invalid choice: 'nosuchverb'"),
    (["fill-mask", "{fm}", "no mask here"], 2, "text has no [MASK] token: 'no mask here'"),
    (["fill-mask", "{fm}"], 2, "no input: give TEXT arguments, -i FILE, or '-' to read stdin"),
    (["fill-mask", "{fm}", "x[MASK]", "--precision", "int3"], 2, "argument --precision: invalid choice: 'int3'"),
    (["fill-mask", "{fm}", "x[MASK]", "--top-k", "many"], 2, "argument --top-k: invalid int value: 'many'"),
    (["fill-mask", "{fm}", "x[MASK]", "--provider", "cuda"], 1, "provider 'cuda' unavailable; available: ["),
    (["fill-mask", "{tmp}/nonexistent", "x[MASK]"], 1, "nonexistent"),
    (["fill-mask", "{cls}", "x[MASK]"], 1, "holds a 'text-classification' model, not 'fill-mask'; use "
                                           "`albert-onnx predict`"),
    (["fill-mask", "{fm}", "猫" * 80 + "[MASK]"], 2, "the model takes at most 64"),
    (["fill-mask", "{fm}", "-i", "{tmp}/missing.txt"], 2, "--input {tmp}/missing.txt: cannot read it"),
    (["score", "{fm}", "x[MASK]"], 2, "scoring masks each token"),
    (["score", "{fm}", "x", "--threads", "0"], 2, "--threads must be left out (ONNX Runtime's default)"),
    (["score", "{fm}", "-", "-i", "-"], 2, "stdin ('-') can be read once"),
    (["predict", "{cls}", "猫" * 80], 2, "the model takes at most 64; pass --truncation to cut it"),
    (["predict", "{cls}", "a", "b", "--text-pair", "c"], 2, "--text-pair was given 1 times for 2 TEXTs"),
    (["predict", "{cls}", "a", "--top-k", "0"], 2, "--top-k must be left out (every label) or a positive integer"),
    (["predict", "{cls}", "a", "--precision", "fp16"], 1, "no 'fp16' graph; this artifact has ['fp32', 'int8'] "
                                                         "(export with --fp16 for fp16)"),
    (["predict", "{cls}", "a", "--question", "q"], 2, "--question and --context are for question answering"),
    (["predict", "{cls}", "a", "--choices", "x", "y"], 2, "--choices is for multiple choice"),
    (["predict", "{cls}", "a", "--labels", "x,y"], 1, "zero-shot classification needs an NLI model with an "
                                                      "entailment label; this one's labels are ['neg', 'neu', 'pos']"),
    (["predict", "{fm}", "-i", "{tmp}/bad.jsonl"], 2, "{tmp}/bad.jsonl line 2 is not JSON"),
    (["batch", "{cls}", "{tmp}/nope.txt", "-o", "{tmp}/o1"], 2, "nope.txt: input not found"),
    (["batch", "{cls}", "{tmp}/in.txt", "-o", "{tmp}/o2", "--task", "score"], 2,
     "scoring needs a fill-mask artifact; this one holds 'text-classification'"),
    (["batch", "{cls}", "{tmp}/elf.txt", "-o", "{tmp}/o3"], 2, "elf.txt line 1 holds a NUL character"),
    (["batch", "{cls}", "{tmp}/bad.parquet", "-o", "{tmp}/o4"], 2, "bad.parquet: not a readable Parquet file"),
    (["batch", "{cls}", "{tmp}/in.txt", "-o", "{tmp}/o5", "--workers", "0"], 2, "--workers must be a positive"),
    (["batch", "{cls}", "{tmp}/in.txt"], 2, "the following arguments are required: -o/--output"),
    (["batch", "{tmp}/corrupt", "{tmp}/in.txt", "-o", "{tmp}/o6"], 1, "the file is truncated or altered"),
    (["bench", "{fm}", "--lengths", "8,x"], 2, "--lengths must be comma-separated integers"),
    (["bench", "{fm}", "--max-slowdown", "0"], 2, "--max-slowdown must be a positive ratio"),
    (["evaluate", "{cls}", "{tmp}/nope.jsonl"], 2, "nope.jsonl: data file not found"),
    (["evaluate", "{cls}", "{tmp}/bad.jsonl"], 2, "bad.jsonl:1: field 'label' is missing"),
    (["evaluate", "{fm}", "{tmp}/labels.jsonl"], 2, "evaluate takes question-answering, multiple-choice and "
                                                    "text-classification models"),
    (["evaluate", "{cls}", "{tmp}/labels.jsonl", "--limit", "0"], 2, "--limit must be a positive"),
    (["evaluate", "{cls}", "{tmp}/labels.jsonl", "--precision", "fp16"], 2, "precision 'fp16': the artifact has "
                                                                           "no such graph; it has ['fp32', 'int8']"),
    (["evaluate", "{cls}", "{tmp}/labels.jsonl", "--fail-over", "-1"], 2, "--fail-over takes the points"),
    (["evaluate", "{cls}", "{tmp}/labels.jsonl", "--fail-over", "1", "--precision", "int8"], 2,
     "--fail-over compares with fp32"),
    (["serve", "{fm}", "--port", "http"], 2, "argument --port: invalid int value: 'http'"),
    (["serve", "{fm}", "--api-key-env", "ALBERT_ONNX_TEST_NO_SUCH_VAR"], 2,
     "the API key variable 'ALBERT_ONNX_TEST_NO_SUCH_VAR' is unset or empty"),
    (["serve", "{fm}", "--log-level", "loud"], 2, "argument --log-level: invalid choice: 'loud'"),
    (["export", "{tmp}/no-model-here", "-o", "{tmp}/e1"], 1, "neither a model folder nor a hub id"),
    (["export", "-o"], 2, "argument -o/--output: expected one argument"),
    (["export", "x", "-o", "{tmp}/e2", "--task", "summarize"], 2, "argument --task: invalid choice: 'summarize'"),
    (["completion", "fish"], 2, "argument shell: invalid choice: 'fish' (choose from 'bash', 'zsh')"),
]


@pytest.fixture(scope="module")
def wrong_inputs(tmp_path_factory: pytest.TempPathFactory, cls_art: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = tmp_path_factory.mktemp("wrong")
    (tmp / "in.txt").write_text("吾輩は猫である。\n", encoding="utf-8")
    (tmp / "elf.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    (tmp / "bad.parquet").write_bytes(b"not parquet at all")
    (tmp / "bad.jsonl").write_text('{"text": "x[MASK]"}\n{oops\n', encoding="utf-8")
    (tmp / "labels.jsonl").write_text('{"text": "猫。", "label": "neg"}\n', encoding="utf-8")
    pq.write_table(pa.table({"x": [1]}), tmp / "ok.parquet")
    shutil.copytree(cls_art, tmp / "corrupt")
    graph = tmp / "corrupt" / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    return tmp


@pytest.mark.parametrize("argv, status, message", WRONG, ids=[" ".join(w[0])[:60] or "nothing" for w in WRONG])
def test_every_wrong_invocation_is_one_line(argv: list[str], status: int, message: str, tiny_artifact: Path,
                                           cls_art: Path, wrong_inputs: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    def fill(s: str) -> str:
        return s.format(fm=tiny_artifact, cls=cls_art, tmp=wrong_inputs)

    assert main([fill(a) for a in argv]) == status
    out, err = capsys.readouterr()
    assert err.startswith("albert-onnx: error: ") and err.count("\n") == 1, err
    assert fill(message) in err and "Traceback" not in err
    assert out == ""  # nothing half-printed
    if argv[:1] == ["batch"] and "-o" in argv:  # a failed start leaves nothing behind that refuses the rerun
        assert not Path(fill(argv[argv.index("-o") + 1])).exists()


def test_a_failed_batch_start_does_not_block_the_rerun(cls_art: Path, tiny_artifact: Path, wrong_inputs: Path,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The worker's own error (a fill-mask-only --task on a classifier is caught before; a corrupt
    graph is found by the workers) comes out as one line, and the corrected rerun runs."""
    out = tmp_path / "out"
    out.mkdir()  # a folder the user made: kept, and left empty
    assert main(["batch", str(wrong_inputs / "corrupt"), str(wrong_inputs / "in.txt"), "-o", str(out),
                 "--quiet"]) == 1
    assert capsys.readouterr().err.count("\n") == 1 and list(out.iterdir()) == []
    assert main(["batch", str(cls_art), str(wrong_inputs / "in.txt"), "-o", str(out), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_run"] == 1


def test_worker_start_errors_come_out_whole(tiny_artifact: Path, wrong_inputs: Path, tmp_path: Path) -> None:
    """An error raised as the local engine's workers start (a graph file gone, found only when
    the workers load it) is the worker's own message, not BrokenProcessPool."""
    from albert_onnx.batch import run_local
    from albert_onnx.errors import ArtifactError

    art = tmp_path / "no-int8"
    shutil.copytree(tiny_artifact, art)
    (art / "model_int8.onnx").unlink()
    with pytest.raises(ArtifactError, match="model_int8.onnx is missing"):
        run_local(art, wrong_inputs / "in.txt", tmp_path / "o", precision="int8", progress=False)
    assert not (tmp_path / "o").exists()


def test_debug_adds_the_traceback(tiny_artifact: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fill-mask", str(tiny_artifact), "no mask", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.endswith("albert-onnx: error: text has no [MASK] "
                                                                      "token: 'no mask'\n")


def test_messages_in_cli_words() -> None:
    known = flags(build_parser())
    assert cli_words("text is 90 tokens long; pass truncation=True to cut it", known) == \
        "text is 90 tokens long; pass --truncation to cut it"
    assert cli_words("doc_stride=5 must be smaller than max_seq_len=4", known) == \
        "--doc-stride 5 must be smaller than --max-seq-len 4"
    assert cli_words("stride needs an aggregation_strategy other than 'none'", known) == \
        "--stride needs an --aggregation-strategy other than 'none'"
    assert cli_words("use albert_onnx.pipeline() to get the right predictor", known) == \
        "use `albert-onnx predict` to get the right predictor"
    assert cli_words("align_to_words=False keeps spans", known) == "--no-align-to-words keeps spans"
    # plain words stay words; keywords that are no flag stay as they are
    assert cli_words("the labels and threads of max_length=64", known) == "the labels and threads of max_length=64"


def test_help_describes_every_argument_with_examples() -> None:
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(verbs) == {"export", "fill-mask", "score", "predict", "batch", "bench", "serve", "evaluate",
                          "completion"}
    for name, verb in verbs.items():
        for action in verb._actions:
            assert action.help and action.help.strip(), (name, action.dest)
        text = verb.format_help()
        examples = text.split("examples:\n", 1)[1].splitlines()
        assert len(examples) >= 3 and all(e.strip().startswith(("albert-onnx", "cat ", "ALBERT_KEY", "eval"))
                                          for e in examples), (name, examples)
    predict = verbs["predict"].format_help()
    for group in ("question answering", "multiple choice", "zero-shot classification", "token classification",
                  "feature extraction", "text classification"):
        assert f"\n{group}" in predict
    assert "'この例は{}です。'" in predict and "'This example is {}.'" in predict
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("albert-onnx ")


def completions(script: str, words: list[str], shell: str = "bash") -> list[str]:
    """What the completion function offers for the last word of ``words``: in bash, or in zsh as
    its bashcompinit calls it (compinit loaded, the function run under ``emulate sh``)."""
    array = " ".join(f"'{w}'" for w in words)
    call = (f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; _albert_onnx; "
            'printf "%s\\n" "${COMPREPLY[@]}"')
    if shell == "bash":
        body = f"{script}\n{call}"
    else:
        body = (f"autoload -U +X compinit && compinit -u\n{script}\n"
                f"t() {{ emulate -L sh; setopt kshglob noshglob braceexpand; {call}; }}; t")
    res = subprocess.run([shell, "-c", body], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    # bash's compgen keeps what starts with the word; under zsh, compadd does that after it
    return [w for w in res.stdout.split() if w.startswith(words[-1])]


def test_bash_completion(tmp_path: Path) -> None:
    script = run_cli("completion", "bash").stdout
    assert completions(script, ["albert-onnx", "pre"]) == ["predict"]
    assert completions(script, ["albert-onnx", "predict", "art", "--prec"]) == ["--precision"]
    assert completions(script, ["albert-onnx", "predict", "art", "--precision", ""]) == ["fp32", "int8", "fp16"]
    assert completions(script, ["albert-onnx", "serve", "art", "--log-level", "w"]) == ["warning"]
    assert completions(script, ["albert-onnx", "completion", ""]) == ["bash", "zsh"]
    (tmp_path / "my-artifact").mkdir()
    os.chdir(tmp_path)
    assert completions(script, ["albert-onnx", "fill-mask", "my-"]) == ["my-artifact"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh on this machine (apt-get install zsh)")
def test_zsh_completion() -> None:
    script = run_cli("completion", "zsh").stdout
    assert "bashcompinit" in script
    assert completions(script, ["albert-onnx", "ba"], shell="zsh") == ["batch"]
    assert completions(script, ["albert-onnx", "batch", "a", "b", "--engine", ""], shell="zsh") == \
        ["local", "ray", "spark"]
