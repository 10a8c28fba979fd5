"""opass return codes: the one table mapping each vendor code to one outcome.

Source: the opass manual's 返回码说明 (seeds/000_…). ``None`` means success. The
sandbox answers from this same table, so the client and the sandbox cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping

from dispatcher.errors import (
    AccountFatalError,
    RecipientRejectedError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.providers.codes import CodeInfo

OPASS_CODES: Mapping[str, CodeInfo] = {
    "200": CodeInfo(None, "请求成功"),
    "-1": CodeInfo(TransientError, "系统繁忙，请稍后再试或者其他原因"),
    "2000": CodeInfo(AccountFatalError, "IP白名单限制"),
    # 2001 also covers a clock outside the ±60 s window: a human must fix it.
    "2001": CodeInfo(AccountFatalError, "API授权错误"),
    "6000": CodeInfo(ThrottledError, "访问频繁,请稍后再试"),
    "40002": CodeInfo(AccountFatalError, "余额不足"),
    "40004": CodeInfo(RequestRejectedError, "参数错误"),
    "40005": CodeInfo(RequestRejectedError, "超出模板参数设置限制"),
    "40006": CodeInfo(RequestRejectedError, "扩展号不匹配或者被企业其他账号占用"),
    "60001": CodeInfo(RequestRejectedError, "模板不存在"),
    "60002": CodeInfo(RequestRejectedError, "批量发送下电话数量和参数数量不一样"),
    "60003": CodeInfo(RequestRejectedError, "短信变量个数和模板变量个数不一样"),
    "60004": CodeInfo(RequestRejectedError, "变量值超过模板设置的变量值最大长度"),
    "60005": CodeInfo(RequestRejectedError, "没有可以发送的内容"),
    "60006": CodeInfo(RequestRejectedError, "模板参数变量格式错误"),
    "60007": CodeInfo(RecipientRejectedError, "手机号参数格式错误"),
    "60008": CodeInfo(RequestRejectedError, "手机号数量大于1000"),
    # "Occasional; retry" per the FAQ: the resource lock refused the request.
    "60009": CodeInfo(TransientError, "短信资源被锁定"),
}

#: Receipt states from 短信网关回执短信状态; only DELIVRD means delivered.
OPASS_RECEIPT_STATES: Mapping[str, str] = {
    "DELIVRD": "Message is delivered to destination",
    "EXPIRED": "Message validity period has expired",
    "DELETED": "Message has been deleted",
    "UNDELIV": "Message is undeliverable",
    "ACCEPTD": "Message is in accepted state (read on behalf of the subscriber)",
    "UNKNOWN": "Message is in invalid state",
    "REJECTD": "Message is in a rejected state",
}
