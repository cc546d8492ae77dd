"""The tokenizer of the runs query language (see `assay.runs.query`).

`Source` holds the text being parsed: it splits it into `Token`s and raises the
`InvalidArgumentError` that points at the column where something is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from assay.errors import InvalidArgumentError

_KEYWORDS = frozenset(
    ["and", "or", "not", "in", "is", "null", "like", "ilike", "true", "false", "asc", "desc"]
)
_OPERATORS = {
    "==": "=",
    "=": "=",
    "!=": "!=",
    "<>": "!=",
    "<=": "<=",
    ">=": ">=",
    "<": "<",
    ">": ">",
}
_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_NUMBER_START = re.compile(r"-?\.?\d")
_WORD_START = re.compile(r"[^\W\d]")
_BARE = re.compile(r"[\w.\-]+")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_HINTS = {"&": "write 'and'", "|": "write 'or'", "!": "write 'not' or '!='"}

_TokenKind = Literal["word", "number", "string", "op", "(", ")", ",", "-", "end"]
_PUNCTUATION: dict[str, _TokenKind] = {"(": "(", ")": ")", ",": ",", "-": "-"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: _TokenKind
    pos: int
    end: int
    value: Any = None  # number: int | float; string: str; op: the canonical op; word: segments

    @property
    def keyword(self) -> str | None:
        """The keyword this word is (`AND`, `Null`, …), if it is a bare one."""
        if self.kind != "word" or len(self.value) != 1 or self.value[0][1]:
            return None
        word = self.value[0][0].lower()
        return word if word in _KEYWORDS else None


class Source:
    """The text being parsed, and how to say what is wrong with it."""

    def __init__(self, text: str, what: Literal["filter", "sort"]) -> None:
        self.text = text
        self.what = what

    def fail(self, pos: int, message: str) -> NoReturn:
        shown = re.sub(r"\s", " ", self.text)  # one line, same columns
        raise InvalidArgumentError(
            f'Cannot parse {self.what} "{shown}" at column {pos + 1}: {message}.',
            **{self.what: self.text, "column": pos + 1},
        )

    def shown(self, tok: Token) -> str:
        return self.text[tok.pos : tok.end]

    def tokens(self) -> Iterator[Token]:
        text, n = self.text, len(self.text)
        pos = self._skip_space(0)
        while pos < n:
            c = text[pos]
            if _NUMBER_START.match(text, pos):
                tok = self._number(pos)
            elif c in "'\"":
                value, end = self._quoted(pos, "string")
                tok = Token("string", pos, end, value)
            elif c == "`" or _WORD_START.match(c):
                tok = self._word(pos)
            elif text[pos : pos + 2] in _OPERATORS:
                tok = Token("op", pos, pos + 2, _OPERATORS[text[pos : pos + 2]])
            elif c in _OPERATORS:
                tok = Token("op", pos, pos + 1, _OPERATORS[c])
            elif c in _PUNCTUATION:
                tok = Token(_PUNCTUATION[c], pos, pos + 1)
            else:
                hint = f"; {_HINTS[c]}" if c in _HINTS else ""
                self.fail(pos, f"unexpected character {c!r}{hint}")
            yield tok
            pos = self._skip_space(tok.end)
        yield Token("end", n, n)

    def _skip_space(self, pos: int) -> int:
        m = _SPACE.match(self.text, pos)
        return m.end() if m else pos

    def _number(self, pos: int) -> Token:
        m = _NUMBER.match(self.text, pos)
        assert m is not None  # _NUMBER_START matched
        end = m.end()
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "._"):
            bad = m.group() + self._bare(end)
            self.fail(pos, f"expected a number, found {bad!r}")
        literal = m.group()
        value: int | float = float(literal) if any(c in literal for c in ".eE") else int(literal)
        return Token("number", pos, end, value)

    def _quoted(self, pos: int, what: Literal["string", "name"]) -> tuple[str, int]:
        text, quote = self.text, self.text[pos]
        out: list[str] = []
        i = pos + 1
        while i < len(text):
            c = text[i]
            if c == quote:
                if what == "name" and text.startswith("``", i):  # `` is a literal backtick
                    out.append("`")
                    i += 2
                    continue
                return "".join(out), i + 1
            if c == "\\" and what == "string" and i + 1 < len(text):
                # Unknown escapes keep their backslash, so '50\%' reaches `like` intact.
                out.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
                continue
            out.append(c)
            i += 1
        self.fail(pos, f"unterminated {what}: expected a closing {quote} to end it")

    def _word(self, pos: int) -> Token:
        """A field or keyword: bare runs of letters, digits, `_.-` and `backticked` runs."""
        segments: list[tuple[str, bool]] = []
        end = pos
        while end < len(self.text):
            if self.text[end] == "`":
                value, end = self._quoted(end, "name")
                segments.append((value, True))
            elif bare := self._bare(end):
                segments.append((bare, False))
                end += len(bare)
            else:
                break
        return Token("word", pos, end, tuple(segments))

    def _bare(self, pos: int) -> str:
        m = _BARE.match(self.text, pos)
        return m.group() if m else ""
