"""The real clients users bring, unchanged, against a real `albert-onnx serve` on the loopback:
the OpenAI SDK and LangChain's OpenAIEmbeddings, huggingface_hub's InferenceClient (every method
of each task) and tei-client; each answer equals the Python predictor's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from albert_onnx import pipeline

from .conftest import head_artifact
from .serving import Server
from .test_serve import PLAIN, TEXTS

pytest.importorskip("uvicorn", reason="uvicorn is not installed: pip install -e '.[serve]'")
CLIENTS = "pip install -e '.[test]' (it holds the clients)"



@pytest.fixture()
def embedder(spm_albert: Path, heads_root: Path, servers: list[Server]) -> tuple[Server, Path]:
    _, art = head_artifact("encoder", spm_albert, heads_root)
    servers.append(Server(art, "--api-key-env", "TEST_KEY", env={"TEST_KEY": "sk-test"}))
    return servers[-1], art


def test_openai_sdk_embeddings(embedder: tuple[Server, Path]) -> None:
    openai = pytest.importorskip("openai", reason=f"the openai SDK is not installed: {CLIENTS}")
    server, art = embedder
    fe = pipeline(art)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="sk-test", max_retries=0)
    want = fe(PLAIN, pooling="mean", normalize=True)
    got = client.embeddings.create(model=art.name, input=PLAIN)  # the SDK's default: base64, decoded by it
    assert np.allclose([d.embedding for d in got.data], want, atol=1e-6) and got.model == art.name
    assert got.usage.prompt_tokens == sum(len(fe.tokenizer.encode(t)) for t in PLAIN)
    floats = client.embeddings.create(model=art.name, input=PLAIN[0], encoding_format="float")
    assert np.allclose(floats.data[0].embedding, want[0], atol=1e-6)
    same = client.embeddings.create(model=art.name, input=PLAIN[1], dimensions=fe.hidden_size)
    assert np.allclose(same.data[0].embedding, want[1], atol=1e-6)
    many = [PLAIN[n % 3] + "猫" * (n % 7) for n in range(2048)]  # OpenAI's most: run in batches inside
    got = client.embeddings.create(model=art.name, input=many)
    assert len(got.data) == 2048 and [d.index for d in got.data] == list(range(2048))
    for n in (0, 1, 777, 2047):  # each as it is alone
        assert np.allclose(got.data[n].embedding, fe(many[n], pooling="mean", normalize=True), atol=1e-5)
    assert [m.id for m in client.models.list()] == [art.name] and client.models.retrieve(art.name).id == art.name
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert missing.value.code == "model_not_found" and "does not exist" in missing.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.embeddings.create(model=art.name, input="x", dimensions=8)
    assert bad.value.param == "dimensions" and f"have {fe.hidden_size} dimensions" in bad.value.message
    with pytest.raises(openai.BadRequestError, match="2049 inputs in one request; the most is 2048"):
        client.embeddings.create(model=art.name, input=["x"] * 2049)
    with pytest.raises(openai.BadRequestError, match="input\\[1\\] must be a non-empty str"):
        client.embeddings.create(model=art.name, input=["x", ""])
    wrong = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="missing or wrong API key"):
        wrong.embeddings.create(model=art.name, input="x")


def test_langchain_openai_embeddings(embedder: tuple[Server, Path], servers: list[Server]) -> None:
    lc = pytest.importorskip("langchain_openai", reason=f"langchain-openai is not installed: {CLIENTS}")
    server, art = embedder
    fe = pipeline(art)
    embeddings = lc.OpenAIEmbeddings(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="sk-test",
                                     model=art.name, check_embedding_ctx_length=False)
    assert np.allclose(embeddings.embed_documents(PLAIN), fe(PLAIN, pooling="mean", normalize=True), atol=1e-6)
    assert np.allclose(embeddings.embed_query(PLAIN[0]), fe(PLAIN[0], pooling="mean", normalize=True), atol=1e-6)
    # only base_url, api_key and the flag: the server serves the name LangChain asks for by default
    servers.append(Server(art, "--model-name", "text-embedding-ada-002"))
    plain = lc.OpenAIEmbeddings(base_url=f"http://127.0.0.1:{servers[-1].port}/v1", api_key="x",
                                check_embedding_ctx_length=False)
    assert np.allclose(plain.embed_documents(PLAIN), fe(PLAIN, pooling="mean", normalize=True), atol=1e-6)


def _hub() -> Any:
    hub = pytest.importorskip("huggingface_hub", reason=f"huggingface_hub is not installed: {CLIENTS}")
    return hub.InferenceClient


def same(got: Any, want: Any) -> bool:
    """The client's dataclasses against the predictor's dicts: every field the predictor gives."""
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same, got, want))
    if isinstance(want, dict):
        return all(same(got[k] if isinstance(got, dict) else getattr(got, k), v) for k, v in want.items())
    if isinstance(want, float):
        return abs(float(got) - want) <= 1e-5
    return bool(got == want)


def test_inference_client_fill_mask(tiny_artifact: Path, servers: list[Server]) -> None:
    client_class = _hub()
    servers.append(Server(tiny_artifact))
    client = client_class(model=f"http://127.0.0.1:{servers[0].port}/predict")
    fm = pipeline(tiny_artifact)
    assert same(client.fill_mask(TEXTS[0]), fm(TEXTS[0]))
    assert same(client.fill_mask(TEXTS[0], top_k=2), fm(TEXTS[0], top_k=2))
    words = [c["token_str"] for c in fm(TEXTS[0], top_k=8)][3:6]  # words of the vocabulary, below the top 3
    got = client.fill_mask(TEXTS[0], targets=words)
    assert same(got, fm(TEXTS[0], targets=words)) and [c.token_str for c in got] == words
    other = ["猫", "心理学"]  # a word outside the vocabulary counts by its first token
    assert same(client.fill_mask(TEXTS[1], targets=other, top_k=1), fm(TEXTS[1], targets=other, top_k=1))


def test_inference_client_text_and_token_classification(spm_albert: Path, heads_root: Path,
                                                         servers: list[Server]) -> None:
    client_class = _hub()
    _, cls_art = head_artifact("cls", spm_albert, heads_root)
    _, ner_art = head_artifact("ner", spm_albert, heads_root)
    servers += [Server(cls_art), Server(ner_art)]
    cls, ner = pipeline(cls_art), pipeline(ner_art)
    client = client_class(model=f"http://127.0.0.1:{servers[0].port}/predict")
    assert same(client.text_classification(PLAIN[0]), cls(PLAIN[0]))  # the best label, in a list
    assert same(client.text_classification(PLAIN[0], top_k=3), cls(PLAIN[0], top_k=3))  # all three
    got = client.text_classification(PLAIN[1], top_k=2, function_to_apply="sigmoid")
    assert same(got, cls(PLAIN[1], top_k=2, function_to_apply="sigmoid")) and len(got) == 2
    tagger = client_class(model=f"http://127.0.0.1:{servers[1].port}/predict")
    for strategy in (None, "simple", "first"):
        want = ner(PLAIN[2], **({"aggregation_strategy": strategy} if strategy else {}))
        assert same(tagger.token_classification(PLAIN[2], aggregation_strategy=strategy), want)


def test_inference_client_feature_extraction_and_similarity(embedder: tuple[Server, Path]) -> None:
    client_class = _hub()
    server, art = embedder
    fe = pipeline(art)
    client = client_class(model=f"http://127.0.0.1:{server.port}/predict", api_key="sk-test")
    got = client.feature_extraction(PLAIN[0])  # TEI's defaults: mean pooling, unit length
    assert got.shape == (1, fe.hidden_size) and np.allclose(got[0], fe(PLAIN[0], pooling="mean", normalize=True),
                                                             atol=1e-6)
    raw = client.feature_extraction(PLAIN[0], normalize=False)
    assert np.allclose(raw[0], fe(PLAIN[0], pooling="mean"), atol=1e-5)
    long = "".join(PLAIN) * 3  # over the model's 64 tokens
    for direction in ("Left", "Right"):
        cut = client.feature_extraction(long, truncate=True, truncation_direction=direction)
        want = fe(long, pooling="mean", normalize=True, truncation=True, truncation_side=direction.lower())
        assert np.allclose(cut[0], want, atol=1e-6)
    left, right = (fe(long, pooling="mean", normalize=True, truncation=True, truncation_side=side)
                   for side in ("left", "right"))
    assert not np.allclose(left, right, atol=1e-3)  # the two ends really differ
    scores = client.sentence_similarity(PLAIN[0], other_sentences=PLAIN[1:] + [PLAIN[0]])
    vectors = fe(PLAIN + [PLAIN[0]], pooling="mean", normalize=True)
    assert np.allclose(scores, vectors[1:] @ vectors[0], atol=1e-5) and abs(scores[-1] - 1) < 1e-5


def test_inference_client_question_answering_and_zero_shot(spm_albert: Path, heads_root: Path,
                                                            servers: list[Server]) -> None:
    client_class = _hub()
    _, qa_art = head_artifact("qa", spm_albert, heads_root)
    _, nli_art = head_artifact("nli", spm_albert, heads_root)
    servers += [Server(qa_art), Server(nli_art, "--task", "zero-shot-classification")]
    qa, zs = pipeline(qa_art), pipeline(nli_art, task="zero-shot-classification")
    client = client_class(model=f"http://127.0.0.1:{servers[0].port}/predict")
    context = "".join(PLAIN)
    assert same(client.question_answering(question="猫は?", context=context), qa(question="猫は?", context=context))
    got = client.question_answering(question="猫は?", context=context, top_k=2, align_to_words=False)
    assert same(got, qa(question="猫は?", context=context, top_k=2, align_to_words=False))
    zero = client_class(model=f"http://127.0.0.1:{servers[1].port}/predict")
    labels = ["天気", "動物", "料理"]
    want = zs(PLAIN[0], labels)
    got = zero.zero_shot_classification(PLAIN[0], labels)
    assert [g.label for g in got] == want["labels"] and np.allclose([g.score for g in got], want["scores"], atol=1e-5)
    want = zs(PLAIN[0], labels, multi_label=True, hypothesis_template="{}の話。")
    got = zero.zero_shot_classification(PLAIN[0], labels, multi_label=True, hypothesis_template="{}の話。")
    assert [g.label for g in got] == want["labels"] and np.allclose([g.score for g in got], want["scores"], atol=1e-5)


def _tei() -> Any:
    return pytest.importorskip("tei_client", reason=f"tei-client is not installed: {CLIENTS}")


def test_tei_client_embeddings_tokens_and_info(embedder: tuple[Server, Path]) -> None:
    tei = _tei()
    server, art = embedder
    fe = pipeline(art)
    client = tei.HttpClient(f"http://127.0.0.1:{server.port}", headers={"Authorization": "Bearer sk-test"})
    info = client.info()
    assert info.server_model_id == art.name and info.server_model_type == tei.ModelType.Embedding
    assert info.max_input_length == fe.max_length and info.max_client_batch_size == 2048
    assert np.allclose(client.embed(PLAIN), fe(PLAIN, pooling="mean", normalize=True), atol=1e-6)
    long = "".join(PLAIN) * 3
    left = client.embed(long, truncate=True, truncation_direction=tei.models.TruncationDirection.Left)
    assert np.allclose(left[0], fe(long, pooling="mean", normalize=True, truncation=True, truncation_side="left"),
                       atol=1e-6)
    tokens = client.embed_all(PLAIN[:2])
    want = fe(PLAIN[:2], pooling="none")
    assert [np.asarray(t).shape for t in tokens] == [w.shape for w in want]
    assert all(np.allclose(t, w, atol=1e-5) for t, w in zip(tokens, want))
    text = "吾輩は 猫である。"
    [result] = client.tokenize(text)
    enc = fe.tokenizer.encode_with_offsets(text)
    assert result.get_ids() == enc.ids
    encoded = text.encode("utf-8")
    for token in result.tokens:
        if not token.special:  # TEI's spans are bytes of the input
            assert encoded[token.start:token.stop].decode("utf-8") == token.text
    assert [t.id for t in client.tokenize(text, add_special_tokens=False)[0].tokens] == enc.ids[1:-1]
    assert client.decode(enc.ids) == [fe.tokenizer.decode(enc.ids, skip_special_tokens=True)]
    assert client.decode([enc.ids, enc.ids[:3]], skip_special_tokens=False) == \
        [fe.tokenizer.decode(enc.ids), fe.tokenizer.decode(enc.ids[:3])]
    assert client.prompt_names() == []


def test_tei_client_classify_and_rerank(spm_albert: Path, heads_root: Path, servers: list[Server]) -> None:
    tei = _tei()
    _, cls_art = head_artifact("cls", spm_albert, heads_root)
    _, reg_art = head_artifact("regression", spm_albert, heads_root)
    servers += [Server(cls_art), Server(reg_art)]
    cls = pipeline(cls_art)
    client = tei.HttpClient(f"http://127.0.0.1:{servers[0].port}")
    assert client.info().server_model_type == tei.ModelType.Classifier
    got = client.classify([PLAIN[0], (PLAIN[1], PLAIN[2])])
    want = cls([PLAIN[0], {"text": PLAIN[1], "text_pair": PLAIN[2]}], top_k=None)
    assert [[(s.label, round(s.score, 5)) for s in r.scores] for r in got] == \
        [[(w["label"], round(w["score"], 5)) for w in row] for row in want]
    raw = client.classify(PLAIN[0], raw_scores=True)
    assert np.allclose(sorted(s.score for s in raw[0].scores), sorted(cls.logits([PLAIN[0]])[0]), atol=1e-5)
    reranker = tei.HttpClient(f"http://127.0.0.1:{servers[1].port}")
    assert reranker.info().server_model_type == tei.ModelType.Reranker
    ranked = reranker.rerank("吾輩は猫である。", PLAIN[1:] + ["猫"], return_text=True)
    reg = pipeline(reg_art)
    logits = reg.logits([{"text": "吾輩は猫である。", "text_pair": t} for t in PLAIN[1:] + ["猫"]])
    want_scores = [float(1 / (1 + np.exp(-x[0]))) for x in logits]
    assert [r.index for r in ranked.ranks] == sorted(range(3), key=lambda i: -want_scores[i])
    assert all(abs(r.score - want_scores[r.index]) < 1e-5 for r in ranked.ranks)
