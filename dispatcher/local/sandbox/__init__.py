"""The sandbox: one real HTTP server that plays opass (经分助手) and aiofish (飞鱼短信).

Run it with ``python -m dispatcher.local.sandbox [--host 127.0.0.1] [--port 8800]
[--config FILE.json] [--time-scale F] [--log-level INFO]`` (or ``sms-dispatch
sandbox`` with the same options). ``--port 0`` picks a free port. Once
listening it prints exactly one stdout line, ``sandbox listening on
http://127.0.0.1:PORT``; logs go to stderr (phones masked, no secrets).
SIGTERM/SIGINT stop it with exit status 0; a bad config exits with 2.

Demo credentials (``demo.py``): opass apiKey ``sandbox-api-key`` / accessKey
``sandbox-access-key``, templates ``1000000000000000001`` (no variable),
``…002`` (``{验证码,6}``), ``…003`` (``{姓名,10}``, ``{金额,10}``); aiofish
account ``sandbox`` / password ``sandbox-password``, appKey ``sandbox-app-key``
/ appSecret ``sandbox-app-secret``, AES key ``sandbox-aes-k128``.

Gateway paths
-------------
opass (JSON POST, always HTTP 200): ``/message/send``, ``/message/sendBatch``,
``/sms/arriveRes/qry`` and ``/sms/arrive/qry`` (the Java sample's path, same
handler), ``/sms/send/statistics``, ``/sms/residueValue/qry``, ``/health/info``
(and ``/health/info/``). aiofish SMS: POST ``/rest/sms/sendSms``,
``/rest/sms/sendSmsByEncrypt``, ``/rest/sms/sendSms/encryption``,
``/rest/sms/batchSendSms``, ``/rest/sms/batchSendSms/encryption``; GET
``/rest/sms/getBalance``, ``/rest/sms/getReport``, ``/rest/sms/getReply``.
vsms: POST ``/rest/vsms/v1/tpl`` (multipart), GET ``/rest/vsms/v1/tpl/status``,
POST ``/rest/vsms/v1/message``, ``/rest/vsms/v1/message/vars``. isms: POST
``/rest/isms/sendIsms``.

Control API (loopback peers only — 127.0.0.0/8, ::1 — anyone else gets 404)
---------------------------------------------------------------------------
``GET /_sandbox/ledger`` → ``{"accepted": {"opass"|"aiofish"|"aiofish-vsms"|
"aiofish-isms": {phone: times accepted}}, "requests": {path: count}}`` (a phone
counts once per accepted request carrying it; every gateway request counts,
rejected and faulted ones included). ``POST /_sandbox/reset`` clears
everything and restores the start-up config. ``GET|POST|DELETE
/_sandbox/faults`` (``{"rules": [...]}``). ``GET|POST /_sandbox/config``
(partial update, deep-merged; ``outcomes`` is replaced whole). ``GET
/_sandbox/stats`` (pushes attempted/succeeded/failed/retried/dropped and
answer-time p50/p99/max per gateway, ``push_stopped``, limiter maxima per
account and limit, pending receipts, balances, ``in_flight``: gateway requests
being answered now and the most at once, per family ``opass``/``aiofish``/``vsms``). ``GET /_sandbox/messages?phone=``
(what was accepted for a phone: gateway, text, message_id, client_id…).
``POST /_sandbox/uplink`` ``{gateway, account, phone, content, ext?}``. Bad
input answers 400 ``{"error"}``. :class:`dispatcher.local.sandbox.control.SandboxControl`
wraps all of this and retries while the connection is refused.

Fault rules: ``{"kind": "refuse"|"reset"|"drop"|"slow"|"code", "rate": 1.0,
"count": null, "path": null, "code": null, "delay_ms": 2000, "duration_ms":
null}``; ``path`` is a prefix, the first rule that fires wins, ``/_sandbox/`` is
never faulted. ``reset`` = TCP RST before processing; ``drop`` = process fully
then RST; ``slow`` = process then wait ``delay_ms``; ``code`` = answer that code
(only on paths of the gateway that owns it), accept nothing. ``refuse`` closes
the listening socket (real "connection refused"; open connections live on):
for ``duration_ms`` once, or, without it, ``rate`` × 200 ms of every 200 ms
cycle but always leaving ≥ 20 ms open so the control API stays reachable
(``path`` and ``count`` do not apply). While a refuse rule is active every answer carries
``Connection: close``.

Choices where the manuals are silent or ambiguous
-------------------------------------------------
opass
  * Nonce: any non-empty string. The manual asks for ≥ 10 characters but its
    own C#/VB samples send 5-9 digits (``Random.Next(10000, 999999999)``) and
    the Python/PHP samples may send fewer than 10. A nonce seen again for the
    same apiKey within ``opass_nonce_ttl_s`` (2 × 60 s) answers 2001; it is
    checked after the signature, so a forged request cannot burn a nonce.
  * Sign: every sample's reading is accepted (Python/C#: empty values skipped;
    PHP: empty/null as ``key=``; Postman: ``null`` as text, objects as compact
    JSON). Timestamp: 13 digits within ±60 s (``opass_ts_window_s``), else 2001
    "无效的参数（时间戳）". Missing headers / unknown apiKey / bad sign: 2001.
    IP whitelist (per account ``ip_whitelist``): 2000. Content-Type is not
    enforced (samples vary); an empty body is ``{}``; a body that is not a JSON
    object answers 40004.
  * Template parameters are strict JSON: the manual's ``["测\\试"]`` example is
    not valid JSON and answers 60006, as do non-string items. A template
    without variables takes ``["",""]`` or ``[[],[]]`` in sendBatch; a missing
    ``templateParamJson`` for a template with variables answers 60002. An
    optional per-account ``signature`` is prefixed to the rendered text
    (default empty); 行业短信 is charged recipients × segments of that text.
  * msgId: 18 digits from a counter that restarts at reset, so reruns with the
    same seed get the same ids and the same outcomes.
  * Receipts (pull): each returned once, ≤ ``opass_pull_max`` (600) per call,
    ``msgId``/``bid`` filters combine with AND, receipts older than
    ``pull_window_s`` (6 h) are dropped; ``tel`` is the full number (the
    manual's sample shows it masked). Times are China Standard Time (UTC+8).
  * Statistics: one row per day with sends (oldest first), counted per
    recipient; success/fail from receipts arrived so far, the rest
    ``noReceiptCount``; ``totalSize`` = number of rows.
  * Limits (per account, sliding windows, refused requests not counted):
    send 300/s, query APIs 3/min shared (FAQ), residueValue 1/15 s, statistics
    4/min; all answer 6000. Health answers ``{"code":200,"message":"OK",
    "data":{"status":"UP"}}`` to any method, unsigned.
aiofish
  * HTTP 415 unless ``Content-Type`` is ``application/json`` (any charset);
    405 from the router for a wrong method. Errors answer ``{"code", "smsId":
    null, "subStat", "subStatDes"}``; getBalance and getReply errors use their
    own ``revStat``/``revStatDes`` keys. The password must be the lower-case MD5.
  * …/encryption: unknown account, bad sign and ``ts`` outside ±5 min
    (undocumented; ``aiofish_ts_window_s``) answer 401/p:003, the closest code;
    an account without appSecret/AES key 111/p:008; bizContent that does not
    decrypt to a JSON object 122/p:011.
  * sendSmsByEncrypt ``mobile``: each number encrypted and comma-joined (echoed
    as given) and the whole list encrypted once (each number echoed encrypted
    on its own) are both accepted; anything undecryptable answers p:011.
  * ``【signature】`` is required (``aiofish_require_signature``) although the
    encrypted variant's sample content has none. A non-digit ``subCode``, an
    ``smsId`` over 32 characters or a malformed ``sendTime`` answer 999/p:999;
    a ``sendTime`` in the future delays the receipts.
  * Bad numbers: sendSms/sendSmsByEncrypt list them as p:002 in ``resDetail``
    and send the rest; the encrypted and batch variants accept the rest and
    give the bad ones a REJECTD receipt; no good number at all answers
    411/p:002. A bad ``content`` anywhere in a batch refuses the whole batch.
  * getReport ``stat``: DELIVRD r:000, UNDELIV r:001, EXPIRED r:002, UNKNOWN
    r:003, REJECTD r:004 (the manual's sample), DELETED r:005, ACCEPTD r:006;
    pushed ``stat``: 0 delivered, REJECTD 6 (the manual's sample), UNDELIV 1,
    EXPIRED 2, UNKNOWN 3, DELETED 5, ACCEPTD 7. At most ``aiofish_report_max``
    (1000, undocumented) items per getReport/getReply; receipts kept 48 h.
  * getBalance limited to once per 5 s (the manual's advice, 121/p:010); send
    rate unlimited unless ``limits.aiofish_send`` is set.
vsms / isms
  * ``x-sign`` checked in the order appKey, sign, ts (±5 min,
    ``vsms_ts_window_s``), then ``vsms_request``/``isms_request`` limits
    (unlimited by default). JSON endpoints need ``application/json`` (415).
  * Template: total attachments ≤ ``vsms_resource_max_bytes`` (2 MB); a
    template needs as many ``vars`` as its highest ``#p_N#`` index. Audit: 100,
    then after ``vsms_audit_delay_s`` × time_scale 200, or 400 when the title
    contains ``REJECT``. Messages: > ``vsms_mobile_max`` (1000) numbers →
    mobile_limit; any bad number → invalid_mobile for the whole request; a
    past ``scheduleTime`` → invalid_data. isms takes ``content`` or a ``tplId``
    from ``aiofish.isms_templates``. vsms/isms have no pull API.
Receipts and pushes
  * Outcome = blake2b(seed, message id, phone) mapped onto ``outcomes``
    (``"none"`` = never a receipt). Receipts arrive ``receipt_delay_s`` after
    acceptance. ``receipt_mode``: both (default), pull, push; a batch is queued
    for push only if its push URL was configured when it was accepted.
  * opass pushes ≤ ``opass_push_batch`` (100) receipts per request; success =
    2xx within ``opass_push_timeout_s`` (1 s, the vendor disconnects); answers
    ≥ ``opass_push_slow_s`` are slow and 3 in a row stop pushes to that account.
    aiofish/vsms/isms push one item per request; success = body ``0``.
    Retries: opass, aiofish plain, vsms, isms 5/10/60 min; aiofish
    phone-encrypted and full 1/5/10/60 min; all × ``time_scale``, which scales
    only these vendor delays and the vsms audit (not receipt_delay_s, not limits).
  * The ledger counts accepted batches lazily: when it is read, or a tenth at a
    time once ``ledger_fold_recipients`` (1,000,000) are pending, so a send does
    not pay for counting its 1000 phones and the loop never stalls for long.
"""
