"""The `squad` reader: SQuAD-format JSON, QuAC dialogues (with history) and CoQA, one row per question.

Each row has `id`, `title`, `question`, `context`, `answers` (list of `{"text", "answer_start"}`; absent when
the file has none) and the question's other fields (QuAC's `followup`, `yesno`, `orig_answer`). In a dialogue
(a QuAC paragraph whose questions carry `followup`/`yesno`/`orig_answer`, or a CoQA story) each row also has
`history`: the earlier turns, oldest first, as `{"question", "answer": {"text", "answer_start"}}` (QuAC: the
`orig_answer`, else the first answer). CoQA answers are free text: the span is that text where it occurs
inside the rationale (`span_text`), else the rationale itself; an unknown answer (span_start -1) has none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from etk_apps.mrc.jsonwalk import JsonWalk
from etk_core.data.readers.files import no_rows, read_utf8
from etk_core.errors import DataError
from etk_core.interfaces import RawRow, Reader

#: Bytes read to recognise a file.
SNIFF = 1 << 18
_SQUAD = (re.compile(r'"data"\s*:\s*\['), re.compile(r'"paragraphs"\s*:\s*\['))
_COQA = (re.compile(r'"data"\s*:\s*\['), re.compile(r'"story"\s*:'), re.compile(r'"questions"\s*:\s*\['))
_DIALOGUE_KEYS = ("followup", "yesno", "orig_answer")


def _sniff(source: str) -> str:
    try:
        with open(source, "rb") as handle:
            return handle.read(SNIFF).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    except OSError:
        return ""


class SquadReader(Reader):
    """SQuAD v1.1 / QuAC / CoQA JSON: one row per question, with dialogue history where there is one."""

    name = "squad"
    description = "SQuAD-format JSON (data/paragraphs/qas), QuAC and CoQA dialogues with history; one row a question"
    suffixes = (".json",)
    priority = 10

    @classmethod
    def accepts(cls, source: str) -> bool:
        if not source.lower().endswith(cls.suffixes) or not Path(source).is_file():
            return False
        head = _sniff(source)
        return head.startswith("{") and (all(p.search(head) for p in _SQUAD) or all(p.search(head) for p in _COQA))

    def rows(self) -> Iterator[RawRow]:
        text = read_utf8(self.source)
        if not text.strip():
            raise no_rows(self.source)
        walk = JsonWalk(text)
        try:
            rows = list(self._rows(walk))
        except json.JSONDecodeError as exc:
            raise DataError(f"{self.source}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno}); "
                            f"fix the file") from None
        if not rows:
            raise no_rows(self.source, "the file holds no questions")
        yield from rows

    def _where(self, walk: JsonWalk, pos: int) -> str:
        return f"{self.source}:{walk.line(pos)}"

    def _rows(self, walk: JsonWalk) -> Iterator[RawRow]:
        data = walk.members(walk.start()).get("data")
        if data is None or not isinstance(data[0], list):
            raise DataError(f"{self.source}: no \"data\" list; a SQuAD file is {{\"data\": [{{\"title\", "
                            f"\"paragraphs\": [...]}}]}}")
        for article, pos in walk.items(data[1]):
            where = self._where(walk, pos)
            if not isinstance(article, dict):
                yield RawRow(None, where, "a data entry is not an object with paragraphs")
            elif "story" in article and "questions" in article:
                yield from self._coqa(walk, article, pos)
            elif isinstance(article.get("paragraphs"), list):
                members = walk.members(pos)
                for paragraph, paragraph_pos in walk.items(members["paragraphs"][1]):
                    yield from self._paragraph(walk, paragraph, paragraph_pos, article.get("title"))
            else:
                yield RawRow(None, where, "a data entry has no paragraphs list")

    def _paragraph(self, walk: JsonWalk, paragraph: Any, pos: int, title: Any) -> Iterator[RawRow]:
        where = self._where(walk, pos)
        if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
            yield RawRow(None, where, "a paragraph has no context text")
            return
        if not isinstance(paragraph.get("qas"), list):
            yield RawRow(None, where, "a paragraph has no qas list")
            return
        qas = walk.items(walk.members(pos)["qas"][1])
        dialogue = any(isinstance(qa, dict) and any(key in qa for key in _DIALOGUE_KEYS) for qa, _ in qas)
        history: list[dict[str, Any]] = []
        for qa, qa_pos in qas:
            qa_where = self._where(walk, qa_pos)
            if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                yield RawRow(None, qa_where, "a qas entry has no question text")
                continue
            values = {"id": qa.get("id"), "title": title, "question": qa["question"],
                      "context": paragraph["context"], **{k: v for k, v in qa.items() if k not in ("question",)}}
            if dialogue:
                values["history"] = list(history)
                history.append({"question": qa["question"], "answer": _turn_answer(qa)})
            yield RawRow(values, qa_where)

    def _coqa(self, walk: JsonWalk, story: dict[str, Any], pos: int) -> Iterator[RawRow]:
        members = walk.members(pos)
        context = story.get("story")
        answers = story.get("answers") if isinstance(story.get("answers"), list) else []
        if not isinstance(context, str):
            yield RawRow(None, self._where(walk, pos), "a CoQA entry has no story text")
            return
        history: list[dict[str, Any]] = []
        for turn, (question, question_pos) in enumerate(walk.items(members["questions"][1])):
            where = self._where(walk, question_pos)
            if not isinstance(question, dict) or not isinstance(question.get("input_text"), str):
                yield RawRow(None, where, "a CoQA question has no input_text")
                continue
            answer = _coqa_answer(context, answers[turn] if turn < len(answers) else None)
            values = {"id": f"{story.get('id', '')}_{question.get('turn_id', turn + 1)}",
                      "title": story.get("filename"), "question": question["input_text"], "context": context,
                      "answers": [answer] if answer else [], "history": list(history)}
            history.append({"question": question["input_text"], "answer": answer})
            yield RawRow(values, where)


def _turn_answer(qa: dict[str, Any]) -> dict[str, Any] | None:
    """The answer a dialogue continued from: QuAC's `orig_answer`, else the first gold answer."""
    if isinstance(qa.get("orig_answer"), dict):
        return qa["orig_answer"]
    answers = qa.get("answers")
    return answers[0] if isinstance(answers, list) and answers else None


def _coqa_answer(context: str, answer: Any) -> dict[str, Any] | None:
    """A CoQA answer as a span: the free-text answer inside the rationale, else the stripped rationale."""
    if not isinstance(answer, dict):
        return None
    start, end = answer.get("span_start", -1), answer.get("span_end", -1)
    if not isinstance(start, int) or not isinstance(end, int) or start < 0 or end <= start:
        return None
    rationale = context[start:end]
    free = str(answer.get("input_text") or "").strip().rstrip(".")
    inside = rationale.lower().find(free.lower()) if free else -1
    if inside >= 0:
        return {"text": rationale[inside:inside + len(free)], "answer_start": start + inside}
    stripped = rationale.strip()
    if not stripped:
        return None
    return {"text": stripped, "answer_start": start + rationale.index(stripped)}
