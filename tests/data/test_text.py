"""Character-level text: the bundled corpus, text files, vocabularies and windows."""

from __future__ import annotations

import hashlib
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.data.preparation import prepare
from nnc.data.text import Vocabulary, corpus_text, text_samples, vocabulary_of, windows
from nnc.errors import ArgumentError, DataError, RecipeError
from nnc.ir.datasets import CORPORA
from nnc.ir.training import TextData


def spec(data: str, length: int = 8, classes: int = 62, extra: str = "") -> str:
    return textwrap.dedent(
        f"""
        model Lm {{
            input tokens: int64[{length}]
            output tokens |> embedding({classes}, 4) |> dense({classes})
        }}
        train Lm {{
            data {data}
            loss cross_entropy
            {extra}
        }}
        """
    )


def test_sonnets_is_the_gutenberg_text() -> None:
    """The corpus is the file converted once (nnc/data/README.md): its digest, size
    and vocabulary are those of the catalog."""
    text = corpus_text("sonnets")
    info = CORPORA["sonnets"]
    raw = (Path(nnc.__file__).parent / "data" / info.file).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == (
        "edb826e5a801c955ab21026b3660306838fbf29ec29ea01886b2854c6d639b55"
    )
    assert len(text) == info.size == 95_728
    assert len(set(text)) == info.characters == 62
    assert text.startswith("THE SONNETS\nby William Shakespeare")
    assert text.count("From fairest creatures we desire increase,") == 1


def test_windows_read_the_next_character() -> None:
    v = Vocabulary.of_text("hello world")
    assert v.characters == " dehlorw"
    ids = v.encode("hello world", "<test>")
    x, y = windows(ids, 3)
    assert [v.decode(r) for r in x] == ["hel", "lo ", "wor"]
    assert [v.decode(r) for r in y] == ["ell", "o w", "orl"]


def test_a_text_file_trains_with_the_model_window(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("abcabcabcabcabcabcab\r\n", encoding="utf-8")
    program = nnc.parse(spec('text("notes.txt")', length=4, classes=4))
    data = prepare(program, program.recipes["Lm"], tmp_path)
    # '\r\n' reads as '\n': vocabulary "\nabc"; 21 characters make 5 windows of 4.
    assert data.train.x.dtype == np.int64 and data.train.x.shape == (5, 4)
    assert data.train.x[0].tolist() == [1, 2, 3, 1]
    assert data.train.y.shape == (5, 4, 4)
    assert data.train.y[0].argmax(axis=-1).tolist() == [2, 3, 1, 2]
    assert data.train.y[-1].argmax(axis=-1).tolist()[-1] == 0  # the final newline


def test_a_vocabulary_file_fixes_the_classes_in_its_order(tmp_path: Path) -> None:
    (tmp_path / "chars.txt").write_text("cbax", encoding="utf-8")
    (tmp_path / "t.txt").write_text("abcabc", encoding="utf-8")
    source = TextData(path="t.txt", vocabulary="chars.txt")
    v = vocabulary_of(source, tmp_path)
    assert v.characters == "cbax"
    assert text_samples(source, 2, v, tmp_path).x.tolist() == [[2, 1], [0, 2]]


def test_a_character_outside_the_vocabulary_is_shown_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "chars.txt").write_text("ab\n", encoding="utf-8")
    (tmp_path / "t.txt").write_text("abba\nbaza\n", encoding="utf-8")
    program = nnc.parse(spec('text("t.txt", vocabulary = "chars.txt")', length=2, classes=3))
    with pytest.raises(DataError) as caught:
        prepare(program, program.recipes["Lm"], tmp_path)
    assert "character 'z' (U+007A) is not in the vocabulary of 3 characters" in caught.value.message
    span = caught.value.span
    assert span is not None and (span.file, span.line, span.col) == ("t.txt", 2, 3)


def test_a_file_whose_vocabulary_differs_from_the_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("abcdefgh" * 4, encoding="utf-8")
    program = nnc.parse(spec('text("t.txt")', length=4, classes=5))
    with pytest.raises(DataError, match=r"vocabulary of 8 characters, so the model must output"):
        prepare(program, program.recipes["Lm"], tmp_path)


def test_bad_text_files(tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes(b"ok\ncaf\xe9\n")
    program = nnc.parse(spec('text("latin1.txt")', length=2, classes=5))
    with pytest.raises(DataError, match=r"latin1.txt is not UTF-8 text \(line 2, byte 6"):
        prepare(program, program.recipes["Lm"], tmp_path)
    program = nnc.parse(spec('text("missing.txt")', length=2, classes=5))
    with pytest.raises(DataError, match="no such file"):
        prepare(program, program.recipes["Lm"], tmp_path)
    (tmp_path / "short.txt").write_text("abc", encoding="utf-8")
    program = nnc.parse(spec('text("short.txt")', length=8, classes=3))
    with pytest.raises(DataError, match="holds 3 characters; windows of the model's 8 need"):
        prepare(program, program.recipes["Lm"], tmp_path)


def test_the_text_setting_round_trips() -> None:
    source = spec('text("a b.txt", vocabulary = "v.txt")', extra="validation text(sonnets)")
    program = nnc.parse(spec("text(sonnets)", extra="validation 0.1"))
    again = nnc.parse(nnc.format(program))
    assert again.recipes == program.recipes
    recipe = nnc.parse(source, check=False).recipes["Lm"]
    assert recipe.data == TextData(path="a b.txt", vocabulary="v.txt")
    assert recipe.validation == TextData(corpus="sonnets")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("text(sonets)", "unknown text corpus 'sonets'. Available: sonnets"),
        ("text()", "takes a corpus name or a file path first"),
        ('text(sonnets, "x.txt")', "takes one positional argument"),
        ("text(sonnets, vocab = 2)", "has no argument 'vocab'"),
        ("text(sonnets), 3", "takes one text(...)"),
    ],
)
def test_text_setting_errors(data: str, message: str) -> None:
    with pytest.raises((ArgumentError, RecipeError), match=re.escape(message)):
        nnc.parse(spec(data))


def test_check_holds_the_model_to_the_corpus() -> None:
    with pytest.raises(RecipeError) as caught:
        nnc.parse(spec("text(sonnets)", classes=50))
    assert "corpus 'sonnets' has 62 distinct characters, so the model must output" in str(
        caught.value
    )
    assert caught.value.span is not None and caught.value.span.line == 7
    bad_input = spec("text(sonnets)").replace("int64[8]", "[8]").replace("embedding(62, 4) |> ", "")
    with pytest.raises(RecipeError, match=r"input is a window of class numbers int64\[L\]"):
        nnc.parse(bad_input)
    with pytest.raises(RecipeError, match="train it with loss cross_entropy"):
        nnc.parse(spec("text(sonnets)").replace("cross_entropy", "mse"))
