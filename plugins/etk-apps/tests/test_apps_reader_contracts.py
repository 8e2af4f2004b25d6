"""The readers of etk-apps (squad, conll) pass the reader contract (etk_core.testing.ReaderContract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from etk_core.testing import ReaderContract

QUESTIONS = [
    {"id": "q1", "question": "where did the cat sit ?", "context": "the cat sat on the mat .", "answer": "on the mat"},
    {"id": "q2", "question": "who sat ?", "context": "the cat sat on the mat .", "answer": "the cat"},
    {"id": "q3", "question": "what do dogs do ?", "context": "dogs bark at naïve cats .", "answer": "bark"},
    {"id": "q4", "question": "at whom ?", "context": "dogs bark at naïve cats .", "answer": "naïve cats"},
]
SENTENCES = [
    {"tokens": "EU rejects German call", "tags": "B-ORG O B-MISC O"},
    {"tokens": "Peter Blackburn", "tags": "B-PER I-PER"},
    {"tokens": "BRUSSELS 1996-08-22", "tags": "B-LOC O"},
    {"tokens": "Müller spoke in Köln .", "tags": "B-PER O O B-LOC O"},
]


def _answers(row: dict[str, str]) -> list[dict[str, Any]]:
    return [{"text": row["answer"], "answer_start": row["context"].index(row["answer"])}]


class TestSquadReader(ReaderContract):
    component_name = "squad"
    required = ("text", "text_pair", "answers")

    def sample_rows(self) -> list[dict[str, str]]:
        """Questions over two shared contexts."""
        return [dict(row) for row in QUESTIONS]

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """SQuAD v1.1 JSON: one article, a paragraph per distinct context, its questions in order."""
        paragraphs: list[dict[str, Any]] = []
        for row in rows:
            if not paragraphs or paragraphs[-1]["context"] != row["context"]:
                paragraphs.append({"context": row["context"], "qas": []})
            paragraphs[-1]["qas"].append({"id": row["id"], "question": row["question"], "answers": _answers(row)})
        path = folder / "squad.json"
        document = {"version": "1.1", "data": [{"title": "T", "paragraphs": paragraphs}]}
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
        return str(path)

    def write_malformed(self, folder: Path) -> tuple[str, int]:
        """The second question has no question text; its object starts on the line before its id."""
        rows = self.sample_rows()
        source = self.write_source(folder, rows)
        document = json.loads(Path(source).read_text(encoding="utf-8"))
        del document["data"][0]["paragraphs"][0]["qas"][1]["question"]
        Path(source).write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
        lines = Path(source).read_text(encoding="utf-8").splitlines()
        return source, next(n for n, line in enumerate(lines) if '"id": "q2"' in line)

    def expected_values(self, row: dict[str, str]) -> dict[str, Any]:
        """The question's id, title, question, context and answers."""
        return {"id": row["id"], "title": "T", "question": row["question"], "context": row["context"],
                "answers": _answers(row)}

    def expected_record(self, row: dict[str, str]) -> dict[str, Any]:
        """The question is the text, the context the text pair."""
        return {"text": row["question"], "text_pair": row["context"], "answers": _answers(row), "id": row["id"]}


class TestConllReader(ReaderContract):
    component_name = "conll"
    required = ("tokens", "tags")
    suffix: ClassVar[str] = ".conll"

    def sample_rows(self) -> list[dict[str, str]]:
        """Sentences (tokens and tags as space-separated strings)."""
        return [dict(row) for row in SENTENCES]

    def write_source(self, folder: Path, rows: list[dict[str, str]]) -> str:
        """A -DOCSTART- line, then `token POS tag` lines, a blank line after each sentence."""
        lines = ["-DOCSTART- -X- O", ""]
        for row in rows:
            lines += [f"{token} NN {tag}" for token, tag in zip(row["tokens"].split(), row["tags"].split())] + [""]
        path = folder / f"ner{self.suffix}"
        path.write_text("\n".join(lines), encoding="utf-8")
        return str(path)

    def write_malformed(self, folder: Path) -> tuple[str, int]:
        """Line 5 (in the second sentence) has a column too many."""
        path = folder / f"bad{self.suffix}"
        path.write_text("EU NN B-ORG\nrejects VB O\n\nPeter NNP B-PER\nBlack burn NNP I-PER\n\nok JJ O\n",
                        encoding="utf-8")
        return str(path), 5

    def expected_values(self, row: dict[str, str]) -> dict[str, Any]:
        """Tokens and tags as lists."""
        return {"tokens": row["tokens"].split(), "tags": row["tags"].split()}

    def expected_record(self, row: dict[str, str]) -> dict[str, Any]:
        """Tokens, tags, and the text the tokens joined by spaces."""
        return {"tokens": row["tokens"].split(), "tags": row["tags"].split(), "text": row["tokens"]}


class TestConllReaderTxt(TestConllReader):
    """A CoNLL file saved as .txt is recognised by its content (ahead of the TSV reader)."""

    suffix = ".txt"

    def write_malformed(self, folder: Path) -> tuple[str, int]:
        """A line with a column too many, past the lines sniffed to recognise a .txt file as CoNLL."""
        # a bad line among the first 50 makes the .txt file not look like CoNLL: the TSV reader gets it
        path = folder / "bad.txt"
        good = "".join(f"word{n} NN O\n" + ("\n" if n % 5 == 4 else "") for n in range(50))
        path.write_text(good + "Black burn NNP I-PER\n\nok JJ O\n", encoding="utf-8")
        return str(path), len(good.splitlines()) + 1
