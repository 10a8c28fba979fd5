"""opass templates: ``{name,maxLen}`` variables, parameter checks and rendering. Pure.

A template such as ``您的验证码是{验证码,6}，5分钟内有效。`` has one variable of at
most 6 characters; a dynamic signature (``{动态签名,20}``) is just a variable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_VARIABLE = re.compile(r"\{([^{},]+),(\d+)\}")


class ParamError(ValueError):
    """Raised when template parameters are wrong; ``code`` is the opass code to answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class OpassTemplate:
    """A parsed template: literal pieces around its variables (``len(pieces) == len(variables) + 1``)."""

    code: str
    text: str
    pieces: tuple[str, ...]
    variables: tuple[tuple[str, int], ...]

    def render(self, values: list[str]) -> str:
        """Substitute ``values`` (already checked) into the template."""
        if not self.variables:
            return self.text
        out = [self.pieces[0]]
        for value, piece in zip(values, self.pieces[1:], strict=True):
            out.append(value)
            out.append(piece)
        return "".join(out)

    def check(self, values: list[str]) -> None:
        """Check a parameter list against the template.

        Raises ``ParamError`` 60003 for a wrong count, 60004 for a value over its maxLen.
        """
        if len(values) != len(self.variables):
            raise ParamError("60003", f"模板需要{len(self.variables)}个变量，收到{len(values)}个")
        for value, (name, max_len) in zip(values, self.variables, strict=True):
            if len(value) > max_len:
                raise ParamError("60004", f"变量{name}超过最大长度{max_len}")


def parse_template(code: str, text: str) -> OpassTemplate:
    """Parse a template text into pieces and ``(name, maxLen)`` variables."""
    pieces: list[str] = []
    variables: list[tuple[str, int]] = []
    last = 0
    for match in _VARIABLE.finditer(text):
        pieces.append(text[last : match.start()])
        variables.append((match.group(1), int(match.group(2))))
        last = match.end()
    pieces.append(text[last:])
    return OpassTemplate(code, text, tuple(pieces), tuple(variables))


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParamError("60006", "模板参数变量格式错误")
    return value


def parse_param_text(text: object) -> list[str]:
    """Parse ``templateParam``: JSON array text of strings; absent/empty means no values.

    Raises ``ParamError`` 60006 if it is not a JSON array of strings.
    """
    if text is None or text == "":
        return []
    if not isinstance(text, str):
        raise ParamError("60006", "templateParam 必须是JSON数组字符串")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ParamError("60006", "templateParam 不是合法的JSON") from exc
    return _string_list(value)


def parse_batch_params(text: object, phone_count: int, template: OpassTemplate) -> list[list[str]]:
    """Parse ``templateParamJson``: one parameter array per phone.

    For a template without variables the manual's ``["",""]`` form (one ``""`` per
    phone) and ``[[],[]]`` are both accepted, as is leaving the field out.
    Raises ``ParamError`` 60006 (format), 60002 (count ≠ phones), 60003/60004.
    """
    if text is None or text == "":
        if template.variables:
            raise ParamError("60002", "templateParamJson 缺失")
        return [[] for _ in range(phone_count)]
    if not isinstance(text, str):
        raise ParamError("60006", "templateParamJson 必须是JSON字符串")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ParamError("60006", "templateParamJson 不是合法的JSON") from exc
    if not isinstance(value, list):
        raise ParamError("60006", "templateParamJson 必须是JSON数组")
    if len(value) != phone_count:
        raise ParamError("60002", "批量发送下电话数量和参数数量不一样")
    out: list[list[str]] = []
    for item in value:
        if item == "" and not template.variables:
            params: list[str] = []
        else:
            params = _string_list(item)
        template.check(params)
        out.append(params)
    return out
