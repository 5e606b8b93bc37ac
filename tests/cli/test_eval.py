from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from murmur.cli.main import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"
runner = CliRunner()


def invoke(*args: str) -> dict[str, object]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_eval_langid_json() -> None:
    report = invoke("eval", "langid", str(FIXTURES / "langid"), "--json")
    rows = report["rows"]
    assert isinstance(rows, list)
    assert [r["language"] for r in rows] == ["de", "en", "fr"]
    assert all(r["ours"] == 1.0 for r in rows)
    assert report["mean"] == {"ours": 1.0, "peer": 1.0}
    assert report["peer_name"] == "pycld2"


def test_eval_sentiment_xlmt_json_has_peer_and_baseline() -> None:
    report = invoke(
        "eval", "sentiment", str(FIXTURES / "xlmt"), "--format", "xlmt", "--split", "val", "--json"
    )
    rows = report["rows"]
    assert isinstance(rows, list)
    assert [r["language"] for r in rows] == ["english", "spanish"]
    assert report["peer_name"] == "vader"
    mean = report["mean"]
    assert isinstance(mean, dict)
    assert set(mean) >= {"ours", "peer", "majority_f1"}
    assert mean["ours"] > mean["majority_f1"]


def test_eval_sentiment_afrisenti_table() -> None:
    result = runner.invoke(
        app, ["eval", "sentiment", str(FIXTURES / "afrisenti"), "--format", "afrisenti", "--split", "dev"]
    )
    assert result.exit_code == 0, result.output
    assert "hau" in result.stdout
    assert "mean" in result.stdout
    # Into a pipe the table keeps its own width: at rich's default 80 columns the names were cut.
    assert "murmur.sentiment.e5head@1" in result.stdout or "murmur.sentiment.lexical@1" in result.stdout
    assert "majority_acc" in result.stdout


def test_eval_sentiment_missing_split_is_a_clear_error() -> None:
    result = runner.invoke(app, ["eval", "sentiment", str(FIXTURES / "xlmt"), "--split", "test"])
    assert result.exit_code == 2
    assert "no XLM-T split 'test'" in result.output


@pytest.mark.parametrize(
    ("texts", "labels", "says"),
    [
        ("good day\nbad day\nmeh\n", "2\n0\n", "3 texts but 2 labels"),
        ("good day\nbad day\n", "2\n0\n1\n", "2 texts but 3 labels"),
        ("good day\nbad day\n", "2\n7\n", "val_labels.txt:2: label '7' is not 0, 1 or 2"),
    ],
)
def test_eval_sentiment_xlmt_files_that_disagree_name_file_and_line(
    tmp_path: Path, texts: str, labels: str, says: str
) -> None:
    lang = tmp_path / "english"
    lang.mkdir()
    (lang / "val_text.txt").write_text(texts, encoding="utf-8")
    (lang / "val_labels.txt").write_text(labels, encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", str(tmp_path), "--tier", "firehose"])
    assert result.exit_code == 2
    assert says in " ".join(result.output.split())


def test_eval_sentiment_afrisenti_bad_row_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "hau").mkdir()
    rows = "tweet\tlabel\nina son ka\tpositive\nban sani ba\tpositve\n"
    (tmp_path / "hau" / "dev.tsv").write_text(rows, encoding="utf-8")
    args = ["eval", "sentiment", str(tmp_path), "--format", "afrisenti", "--split", "dev"]
    result = runner.invoke(app, [*args, "--tier", "firehose"])
    assert result.exit_code == 2
    assert "dev.tsv:3: label 'positve' is not one of negative, neutral, positive" in " ".join(
        result.output.split()
    )
    (tmp_path / "hau" / "dev.tsv").write_text("text\tsentiment\nina son ka\tpositive\n", encoding="utf-8")
    result = runner.invoke(app, [*args, "--tier", "firehose"])
    assert result.exit_code == 2
    assert "no 'tweet' and 'label' columns" in result.output


def test_eval_files_that_are_not_utf8_are_named(tmp_path: Path) -> None:
    (tmp_path / "en.txt").write_bytes(b"hello world\n\xff\xfe\n")
    result = runner.invoke(app, ["eval", "langid", str(tmp_path)])
    assert result.exit_code == 2
    assert "en.txt: not UTF-8 text (invalid start byte at byte 12)" in result.output
    (tmp_path / "hau").mkdir()
    (tmp_path / "hau" / "dev.tsv").write_bytes(b"tweet\tlabel\n\xff\tpositive\n")
    args = ["eval", "sentiment", str(tmp_path), "--format", "afrisenti", "--split", "dev"]
    result = runner.invoke(app, [*args, "--tier", "firehose"])
    assert result.exit_code == 2
    assert "dev.tsv: not UTF-8 text" in result.output


def test_eval_neural_tier_without_the_neural_model_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import murmur.enrich.neural as neural

    monkeypatch.delattr(neural, "neural_sentiment_model", raising=False)
    result = runner.invoke(app, ["eval", "sentiment", str(FIXTURES / "xlmt"), "--tier", "neural"])
    assert result.exit_code == 2
    assert "neural_sentiment_model" in result.output


def test_eval_langid_keeps_a_sentence_with_a_next_line_character_whole(tmp_path: Path) -> None:
    # lingua's fi.txt and nb.txt hold a U+0085 (NEL) inside a sentence: one line, one text
    (tmp_path / "fi.txt").write_text(
        "Ei ole kumma ettei matikka mene päähän,\x85 kun ajatukset laukkaa taas.\n"
        "Suomen kieli on kaunis kieli.\u2028Se on myös vaikea.\n",
        encoding="utf-8",
    )
    report = invoke("eval", "langid", str(tmp_path), "--json")
    rows = report["rows"]
    assert isinstance(rows, list)
    assert [(r["language"], r["n"]) for r in rows] == [("fi", 2)]


def test_eval_an_empty_language_is_skipped_not_scored_zero(tmp_path: Path) -> None:
    # a row of zeros would pull the per-language mean down (here from 1.0 to 0.5)
    (tmp_path / "de.txt").write_text("", encoding="utf-8")
    (tmp_path / "en.txt").write_text("The weather is lovely today.\n", encoding="utf-8")
    report = invoke("eval", "langid", str(tmp_path), "--json")
    rows = report["rows"]
    assert isinstance(rows, list)
    assert [r["language"] for r in rows] == ["en"]
    assert report["mean"] == {"ours": 1.0, "peer": 1.0}
    (tmp_path / "en.txt").write_text("\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "langid", str(tmp_path)])
    assert result.exit_code == 2
    assert "hold no texts" in result.output

    # AfriSenti upstream: orm and tir have an empty train.tsv (zero-shot languages)
    (tmp_path / "hau").mkdir()
    (tmp_path / "hau" / "train.tsv").write_text("tweet\tlabel\nna gode sosai\tpositive\n", encoding="utf-8")
    (tmp_path / "orm").mkdir()
    (tmp_path / "orm" / "train.tsv").write_text("", encoding="utf-8")
    (tmp_path / "tir").mkdir()
    (tmp_path / "tir" / "train.tsv").write_text("tweet\tlabel\n", encoding="utf-8")
    args = ["eval", "sentiment", str(tmp_path), "--format", "afrisenti", "--split", "train", "--json"]
    rows = invoke(*args)["rows"]
    assert isinstance(rows, list)
    assert [(r["language"], r["n"]) for r in rows] == [("hau", 1)]


def test_eval_langid_refuses_files_not_named_by_a_language(tmp_path: Path) -> None:
    # pointed at an XLM-T folder, it scored rows called "train_text" and "val_text" as languages
    (tmp_path / "train_text.txt").write_text("hello there\n", encoding="utf-8")
    (tmp_path / "en.txt").write_text("The weather is lovely today.\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "langid", str(tmp_path)])
    assert result.exit_code == 2
    assert "train_text.txt not named by a language code" in result.output
    (tmp_path / "train_text.txt").unlink()
    (tmp_path / "zh-Hant.txt").write_text("今天天氣很好，我們去公園散步吧。\n", encoding="utf-8")
    rows = invoke("eval", "langid", str(tmp_path), "--json")["rows"]
    assert isinstance(rows, list)
    assert [r["language"] for r in rows] == ["en", "zh-Hant"]
