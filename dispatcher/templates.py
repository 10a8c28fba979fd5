"""opass templates as the accounts file declares them: variables, checks, rendering. Pure.

The opass manual writes a template variable ``{name,maxLen}``: ``你有一个事务编号为{事务编号,30}需要处理。``
takes one value of at most 30 characters. Its batch example writes the same thing with a
leading ``$`` (``你本次收入${收入,10}元。``) and shows the phone receiving ``你本次收入300.09元。``,
so a ``$`` right before a variable belongs to the variable and is not sent. A dynamic
signature is just a variable (``{动态签名,20}``), passed first. Values are substituted in order.

The manual's template rules checked here: a declared template may not contain 【】
anywhere (the gateway adds the signature in 【】) nor start with ``[`` or end with ``]``.
Its length (1-500 characters advised, more by arrangement) is not enforced.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_VARIABLE = re.compile(r"\$?\{([^{},]*),([^{}]*)\}")


class TemplateSyntaxError(ValueError):
    """Raised for a template text that is not the manual's ``{name,maxLen}`` syntax; the message says where."""


@dataclass(frozen=True, slots=True)
class Variable:
    """One template variable: its name and the most characters its value may have."""

    name: str
    max_len: int

    def __str__(self) -> str:
        return f"{{{self.name},{self.max_len}}}"


@dataclass(frozen=True, slots=True)
class Template:
    """A declared template: its code, its text, and that text split around its variables.

    ``len(pieces) == len(variables) + 1``: the literal text before, between and after them.
    """

    code: str
    text: str
    pieces: tuple[str, ...]
    variables: tuple[Variable, ...]

    def render(self, params: Sequence[str]) -> str:
        """The text a phone receives (before the gateway's signature) with ``params`` in place.

        Raises ``ValueError`` when the number of params is not the number of variables.
        """
        if len(params) != len(self.variables):
            raise ValueError(f"template has {len(self.variables)} variables, got {len(params)} params")
        out = [self.pieces[0]]
        for value, piece in zip(params, self.pieces[1:], strict=True):
            out += (value, piece)
        return "".join(out)

    def problems(self, params: Sequence[str]) -> list[tuple[int | None, str]]:
        """What is wrong with ``params`` for this template: ``(index or None for the list, message)``.

        A wrong count is reported once for the list (the opass gateway answers 60003);
        otherwise each value over its variable's ``maxLen`` (the gateway's 60004) by index.
        """
        wrong_count = self.count_problem(len(params))
        if wrong_count:
            return [(None, wrong_count)]
        return [(i, f"is {len(value)} characters; variable {var} takes at most {var.max_len}")
                for i, (value, var) in enumerate(zip(params, self.variables, strict=True))
                if len(value) > var.max_len]

    def count_problem(self, count: int) -> str | None:
        """What is wrong with giving ``count`` values to this template, or ``None``."""
        if count == len(self.variables):
            return None
        return f"template {self.code} takes {_count(len(self.variables))} ({self.signature or 'none'}); got {count}"

    @property
    def signature(self) -> str:
        """The variables as the manual writes them, in order: ``{姓名,10} {金额,10}``."""
        return " ".join(str(v) for v in self.variables)


def _count(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"


def _split(text: str) -> tuple[tuple[str, ...], tuple[Variable, ...]]:
    """The literal pieces and the variables of ``text``; raises ``TemplateSyntaxError`` naming the position."""
    pieces: list[str] = []
    variables: list[Variable] = []
    last = 0
    for match in _VARIABLE.finditer(text):
        _stray_brace(text, last, match.start())
        name, max_len = match.group(1), match.group(2)
        at = f"variable {match.group(0)} at character {match.start() + 1}"
        if not name.strip():
            raise TemplateSyntaxError(f"{at}: the name is empty")
        if not (max_len.isascii() and max_len.isdigit()) or int(max_len) < 1:
            raise TemplateSyntaxError(f"{at}: maxLen must be a positive whole number, as in {{{name},6}}")
        pieces.append(text[last:match.start()])
        variables.append(Variable(name, int(max_len)))
        last = match.end()
    _stray_brace(text, last, len(text))
    pieces.append(text[last:])
    return tuple(pieces), tuple(variables)


def _stray_brace(text: str, start: int, end: int) -> None:
    """Refuse a ``{`` or ``}`` in literal text: the gateway would read it as a broken variable."""
    for i in range(start, end):
        if text[i] in "{}":
            raise TemplateSyntaxError(f"unmatched {text[i]!r} at character {i + 1}; "
                                      f"a variable is written {{name,maxLen}}, e.g. {{验证码,6}}")


def parse_template(code: str, text: str) -> Template:
    """Parse a declared template; raises ``TemplateSyntaxError`` saying what is wrong and where."""
    if not isinstance(code, str) or not (code.isascii() and code.isdigit()):
        raise TemplateSyntaxError(f"the code {code!r} is not digits only (use the code the opass console shows)")
    if not isinstance(text, str) or not text.strip():
        raise TemplateSyntaxError("the text must be a non-empty string")
    if "【" in text or "】" in text:
        raise TemplateSyntaxError("contains 【 or 】, which the manual forbids in a template: "
                                  "the gateway adds the signature, leave it out")
    if text.startswith("[") or text.endswith("]"):
        raise TemplateSyntaxError("starts with [ or ends with ], which the manual forbids in a template")
    pieces, variables = _split(text)
    return Template(code, text, pieces, variables)


def template_variables(text: str) -> tuple[Variable, ...]:
    """The variables of a template text, in order; raises ``TemplateSyntaxError`` for a malformed one.

    >>> [(v.name, v.max_len) for v in template_variables("{姓名,10}您好，您本次收入${金额,10}元。")]
    [('姓名', 10), ('金额', 10)]
    """
    return _split(text)[1]


def render_template(text: str, params: Sequence[str]) -> str:
    """``text`` with ``params`` substituted in order (lengths unchecked), as the phone receives it minus signature.

    Raises ``TemplateSyntaxError`` for a malformed text and ``ValueError`` for a wrong number of params.

    >>> render_template("你本次收入${收入,10}元。", ["300.09"])
    '你本次收入300.09元。'
    """
    pieces, variables = _split(text)
    return Template("", text, pieces, variables).render(params)


__all__ = ["Template", "TemplateSyntaxError", "Variable", "parse_template", "render_template", "template_variables"]
