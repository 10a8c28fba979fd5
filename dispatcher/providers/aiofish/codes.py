"""aiofish return codes: the one table for every aiofish product.

Plain SMS answers a numeric ``code`` paired with a ``subStat`` (``411`` with
``p:002``); vsms and isms answer string codes (``invalid_mobile``). All keys are
distinct, so one table holds them all. ``None`` means success. The sandbox
answers from this table too.
"""

from __future__ import annotations

from collections.abc import Mapping

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    RecipientRejectedError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.providers.codes import CodeInfo

AIOFISH_CODES: Mapping[str, CodeInfo] = {
    # --- SMS: numeric code and its subStat, both mapped (提交响应错误码) ---
    "200": CodeInfo(None, "处理成功"),
    "r:000": CodeInfo(None, "处理成功"),
    "421": CodeInfo(RequestRejectedError, "内容错误"),
    "p:001": CodeInfo(RequestRejectedError, "内容错误"),
    "411": CodeInfo(RecipientRejectedError, "号码错误"),
    "p:002": CodeInfo(RecipientRejectedError, "号码错误"),
    "401": CodeInfo(AccountFatalError, "账号或密码错误"),
    "p:003": CodeInfo(AccountFatalError, "账号或密码错误"),
    "102": CodeInfo(AccountFatalError, "余额不足"),
    "p:004": CodeInfo(AccountFatalError, "余额不足"),
    "412": CodeInfo(RequestRejectedError, "提交号码数量过多"),
    "p:006": CodeInfo(RequestRejectedError, "提交号码数量过多"),
    # The business type is set on the account by the vendor: only they can fix it.
    "451": CodeInfo(AccountFatalError, "业务类型错误"),
    "p:007": CodeInfo(AccountFatalError, "业务类型错误"),
    "111": CodeInfo(AccountFatalError, "没有权限"),
    "p:008": CodeInfo(AccountFatalError, "没有权限"),
    "121": CodeInfo(ThrottledError, "访问速度过快"),
    "p:010": CodeInfo(ThrottledError, "访问速度过快"),
    # A wrong AES key fails every request of the account until it is fixed.
    "122": CodeInfo(AccountFatalError, "解密失败"),
    "p:011": CodeInfo(AccountFatalError, "解密失败"),
    # 999/p:999 其他错误 ("other error"): the manual says of every send answer
    # "subStat 值为r:000时表示该请求被成功受理,其他值则表示受理失败": any subStat
    # but r:000 means the request was NOT accepted (受理失败), and 999 comes only
    # paired with p:999. So nothing was taken and a bounded retry is safe
    # (send_chunk gives up after max_attempts). The sandbox answers it for a bad
    # smsId/sendTime and accepts nothing, consistent with this reading.
    "999": CodeInfo(TransientError, "其他错误"),
    "p:999": CodeInfo(TransientError, "其他错误"),
    # --- vsms and isms (string codes) ---
    "success": CodeInfo(None, "请求成功"),
    "invalid_data": CodeInfo(RequestRejectedError, "无效数据"),
    "invalid_sign": CodeInfo(AccountFatalError, "无效签名"),
    "invalid_appkey": CodeInfo(AccountFatalError, "无效APPKEY"),
    # ts outside the gateway's window means this host's clock is wrong.
    "invalid_ts": CodeInfo(AccountFatalError, "无效时间戳"),
    "invalid_title": CodeInfo(RequestRejectedError, "无效标题"),
    "invalid_tpl": CodeInfo(RequestRejectedError, "无效模板"),
    "invalid_content": CodeInfo(RequestRejectedError, "无效内容"),
    "invalid_resource": CodeInfo(RequestRejectedError, "无效的文件数据"),
    "resource_limit": CodeInfo(RequestRejectedError, "文件数据大小超限"),
    "invalid_mobile": CodeInfo(RecipientRejectedError, "无效手机号"),
    "permission": CodeInfo(AccountFatalError, "无权限"),
    "authorization": CodeInfo(AccountFatalError, "身份验证失败"),
    "mobile_limit": CodeInfo(RequestRejectedError, "号码数量超过限制"),
    "request_limit": CodeInfo(ThrottledError, "请求次数超过限制"),
    # error 处理异常 ("exception while processing"), vsms and isms: their manual
    # says only "success:成功,其他失败" (others failed), never that the request
    # was not accepted (as the SMS API's 受理失败 does), and an exception inside
    # the gateway's processing may come after the message was queued. So for a
    # send it is ambiguous, never resent blindly; for a read-only call (template
    # status) raise_for_code makes it transient. Their status pushes carry the
    # gateway's msgId, not our uuid, so a caller reconciles such a send by hand.
    "error": CodeInfo(AmbiguousError, "处理异常"),
}

#: The numeric code aiofish pairs with each subStat (the sandbox answers both).
AIOFISH_SUBSTAT_HTTP_CODE: Mapping[str, int] = {
    "r:000": 200,
    "p:001": 421,
    "p:002": 411,
    "p:003": 401,
    "p:004": 102,
    "p:006": 412,
    "p:007": 451,
    "p:008": 111,
    "p:010": 121,
    "p:011": 122,
    "p:999": 999,
}
