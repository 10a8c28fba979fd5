"""opass request signing, as the manual's signing section and its vendor samples define it.

Source: seeds/000_… (签名规则 / 签名生成 and the Python, PHP, C#, Postman samples). No
expected value here is computed by ``dispatcher.providers.opass.sign``: sign strings are
written by hand from the manual's rules, HMACs are literals from the openssl CLI.

The vector is the manual's own C# "简洁样例": its sign string and its key placeholder
``你的密钥`` used verbatim. Regenerate a sign with (METHOD/digest one of the six)::

    printf '%s' 'phones=15900582939&templateCode=580467552590397440&x-api-key=22a71bfe4f9cab1dbce7e16bd71138c2&x-nonce=8052433127&x-sign-method=HmacSHA256&x-timestamp=1618810991174' \\
      | openssl dgst -sha256 -hmac '你的密钥'
"""  # noqa: E501 - the openssl command line is kept whole so it can be pasted

from __future__ import annotations

from typing import Any

import pytest

from dispatcher.providers.opass.sign import (
    DEFAULT_SIGN_METHOD,
    candidate_sign_strings,
    hmac_hex,
    new_nonce,
    sign_string,
    sign_value,
    signed_headers,
    verify_sign,
)

MANUAL_KEY = "你的密钥"
API_KEY, NONCE, TS_MS = "22a71bfe4f9cab1dbce7e16bd71138c2", "8052433127", 1618810991174
BODY = {"phones": "15900582939", "templateCode": "580467552590397440"}


def manual_string(method: str) -> str:
    """The C# sample's sign string with ``method`` as its x-sign-method (the manual's order)."""
    return ("phones=15900582939&templateCode=580467552590397440&x-api-key=22a71bfe4f9cab1dbce7e16bd71138c2"
            f"&x-nonce=8052433127&x-sign-method={method}&x-timestamp=1618810991174")


#: openssl dgst -<digest> -hmac '你的密钥' of manual_string(method).
MANUAL_SIGNS = {
    "HmacMD5": "44c43c9ead0acf86c3f0a58956ab071e",
    "HmacSHA1": "db6e69179007617c1c3d14cdac17d47e63df4782",
    "HmacSHA224": "f78829cba9451179503806faa879ded2289831ab3c367464c19715a1",
    "HmacSHA256": "b0f2b573042da5047bd6543707896c31ad34fab12681a561ed99a9692e1c220f",
    "HmacSHA384": "71b4c151e5943d0d2c08a1e48dbd1c2299311b12b995fadbe2aa6948919474d2"
                  "db03af33c33339828742b0ba1ee076db",
    "HmacSHA512": "bb1ce7d7ce475d820bde8c0fb343ba2c2a334be32e426234be96b61dfa45d338"
                  "76ff729b1b41e62582aee6ed84e3c10c0420bc67e3412731a28ee48884532bdc",
}
#: The same request with an empty upExtendCode under the PHP sample's reading (every field,
#: ``upExtendCode=``) signed HmacMD5 as that sample does, and under the Postman sample's
#: (``null`` as the text ``null``) signed HmacSHA256. openssl dgst -md5/-sha256 -hmac '你的密钥' of
#: 'phones=…&templateCode=…&upExtendCode=&x-api-key=…&x-nonce=…&x-sign-method=HmacMD5&x-timestamp=…'
#: and '…&upExtendCode=null&…&x-sign-method=HmacSHA256&…'.
PHP_EMPTY_SIGN = "8888e157bce9a0d6b2aca3c04f5392ea"
POSTMAN_NULL_SIGN = "7ae9bf8258e565e6f90e6cb56e14ff34a83f8185c04167d1e57ab7880ac1e24e"


def sign_fields(method: str, **body: Any) -> dict[str, Any]:
    """The manual request's body fields plus its four signed headers."""
    return {**BODY, **body, "x-api-key": API_KEY, "x-nonce": NONCE, "x-sign-method": method,
            "x-timestamp": str(TS_MS)}


# -- sign_value: how one value is written into the sign string ----------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"),  # Postman: key + '=' + obj renders JS booleans in lower case
    (15, "15"), (0, "0"), (1.5, "1.5"),  # numbers as their decimal text
    ("a b&c=d", "a b&c=d"), ("", ""),  # strings raw: no URL encoding (签名字符串 uses the values as sent)
    (None, ""),  # PHP: $key . '=' . null gives "key="
], ids=["true", "false", "int", "zero", "float", "raw-string", "empty-string", "none"])
def test_scalars_are_written_as_the_samples_write_them(value: object, text: str) -> None:
    assert sign_value(value) == text


def test_a_list_is_compact_json_with_chinese_kept() -> None:
    # Postman: JSON.stringify(obj) for objects and arrays: no spaces, non-ASCII not escaped.
    assert sign_value(["张三", "生日祝福"]) == '["张三","生日祝福"]'


def test_an_object_is_compact_json_and_quotes_are_escaped() -> None:
    assert sign_value({"a": [1, 'x"y'], "b": None}) == '{"a":[1,"x\\"y"],"b":null}'


# -- sign_string: the manual's string ---------------------------------------------------------------


def test_the_manual_c_sharp_string_is_rebuilt_from_its_fields() -> None:
    # Inserted in reverse so the order comes from sign_string's sort, not from the dict.
    fields = dict(reversed(list(sign_fields("HmacSHA256").items())))
    assert sign_string(fields) == manual_string("HmacSHA256")


def test_keys_sort_by_code_point() -> None:
    # Python sorted(), PHP ksort and Java TreeMap all put upper case before "_" before lower case.
    assert sign_string({"b": "2", "_": "u", "a": "1", "B": "U"}) == "B=U&_=u&a=1&b=2"


def test_empty_and_none_fields_are_left_out_by_default() -> None:
    # The Python sample (`if key and value`) and C#/VB (`!string.IsNullOrEmpty(value)`) skip them.
    assert sign_string({"a": "", "b": None, "c": "x"}) == "c=x"
    fields = sign_fields("HmacSHA256", upExtendCode="", bid=None)
    assert sign_string(fields) == manual_string("HmacSHA256")


def test_falsy_values_that_are_not_empty_are_kept() -> None:
    assert sign_string({"n": 0, "f": False, "s": "0"}) == "f=false&n=0&s=0"


def test_the_php_reading_writes_empty_and_none_as_key_equals() -> None:
    # The PHP sample concatenates every field: "" and null both give "key=".
    assert sign_string({"c": "x", "a": "", "b": None}, skip_empty=False) == "a=&b=&c=x"


# -- hmac_hex and signed_headers: the manual's vector, every method ----------------------------------


@pytest.mark.parametrize("method", sorted(MANUAL_SIGNS))
def test_hmac_of_the_manual_string_matches_openssl(method: str) -> None:
    assert hmac_hex(MANUAL_KEY, method, manual_string(method)) == MANUAL_SIGNS[method]


def test_an_unknown_method_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        hmac_hex(MANUAL_KEY, "HmacSHA3", "x")


@pytest.mark.parametrize("method", sorted(MANUAL_SIGNS))
def test_signed_headers_of_the_manual_request(method: str) -> None:
    headers = signed_headers(api_key=API_KEY, access_key=MANUAL_KEY, body={**BODY, "upExtendCode": ""},
                             timestamp_ms=TS_MS, nonce=NONCE, method=method)
    assert headers == {"x-api-key": API_KEY, "x-nonce": NONCE, "x-sign-method": method,
                       "x-timestamp": "1618810991174", "x-sign": MANUAL_SIGNS[method]}


def test_the_default_method_is_hmac_sha256() -> None:
    # Every sample but Java's and PHP's signs HmacSHA256 and names it so.
    headers = signed_headers(api_key=API_KEY, access_key=MANUAL_KEY, body=BODY, timestamp_ms=TS_MS, nonce=NONCE)
    assert DEFAULT_SIGN_METHOD == "HmacSHA256"
    assert (headers["x-sign-method"], headers["x-sign"]) == ("HmacSHA256", MANUAL_SIGNS["HmacSHA256"])


# -- candidate_sign_strings: every sample's reading, nothing else ----------------------------------


def test_fields_without_empty_values_have_one_reading() -> None:
    assert candidate_sign_strings({"b": "2", "a": 1}) == ["a=1&b=2"]


def test_an_empty_string_adds_the_php_reading() -> None:
    assert candidate_sign_strings({"b": "", "a": "1"}) == ["a=1", "a=1&b="]


def test_a_none_adds_the_php_and_the_postman_readings() -> None:
    fields = {"c": "3", "b": None, "a": ""}
    assert candidate_sign_strings(fields) == ["c=3", "a=&b=&c=3", "a=&b=null&c=3"]


# -- verify_sign: what the sandbox accepts -------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(MANUAL_SIGNS))
def test_the_manual_sign_verifies_under_its_method(method: str) -> None:
    assert verify_sign(MANUAL_KEY, method, sign_fields(method), MANUAL_SIGNS[method])


def test_upper_case_hex_and_surrounding_blanks_verify() -> None:
    # Hex names the same bytes in either case (C#'s "X2" writes upper case); blanks around a
    # header value are not part of it (RFC 9110 §5.5).
    upper = MANUAL_SIGNS["HmacSHA256"].upper()
    assert verify_sign(MANUAL_KEY, "HmacSHA256", sign_fields("HmacSHA256"), upper), "upper-case hex refused"
    given = f" {MANUAL_SIGNS['HmacSHA256']}\t"
    assert verify_sign(MANUAL_KEY, "HmacSHA256", sign_fields("HmacSHA256"), given), "blanks around the sign refused"


@pytest.mark.parametrize("given", [
    MANUAL_SIGNS["HmacSHA256"][:-1] + "0",  # one digit changed
    MANUAL_SIGNS["HmacSHA256"][:-2],  # truncated
    MANUAL_SIGNS["HmacSHA224"],  # right key, other method's digest
    "",
    "签名" * 32,  # non-ASCII: refused, never an exception
], ids=["changed", "truncated", "other-method", "empty", "non-ascii"])
def test_anything_but_the_sign_is_refused(given: str) -> None:
    assert not verify_sign(MANUAL_KEY, "HmacSHA256", sign_fields("HmacSHA256"), given)


def test_a_sign_made_with_another_key_or_over_other_fields_is_refused() -> None:
    sign = MANUAL_SIGNS["HmacSHA256"]
    assert not verify_sign("你的密钥2", "HmacSHA256", sign_fields("HmacSHA256"), sign)
    assert not verify_sign(MANUAL_KEY, "HmacSHA256", sign_fields("HmacSHA256", phones="15900582938"), sign)


@pytest.mark.parametrize("method", ["HmacSHA3", "hmacsha256", ""])
def test_an_unknown_method_is_refused_not_raised(method: str) -> None:
    assert verify_sign(MANUAL_KEY, method, sign_fields("HmacSHA256"), MANUAL_SIGNS["HmacSHA256"]) is False


def test_every_sample_reading_of_an_empty_field_verifies() -> None:
    # Python/C# skip it, PHP writes "upExtendCode=", Postman writes "upExtendCode=null" for None.
    assert verify_sign(MANUAL_KEY, "HmacMD5", sign_fields("HmacMD5", upExtendCode=""), PHP_EMPTY_SIGN)
    assert verify_sign(MANUAL_KEY, "HmacMD5", sign_fields("HmacMD5", upExtendCode=""), MANUAL_SIGNS["HmacMD5"])
    with_none = sign_fields("HmacSHA256", upExtendCode=None)
    assert verify_sign(MANUAL_KEY, "HmacSHA256", with_none, POSTMAN_NULL_SIGN)
    assert verify_sign(MANUAL_KEY, "HmacSHA256", with_none, MANUAL_SIGNS["HmacSHA256"])


def test_the_postman_null_reading_is_not_accepted_for_an_empty_string() -> None:
    # JSON.stringify is only for objects; "" is written as "upExtendCode=", never "=null".
    fields = sign_fields("HmacSHA256", upExtendCode="")
    assert not verify_sign(MANUAL_KEY, "HmacSHA256", fields, POSTMAN_NULL_SIGN)


# -- new_nonce ----------------------------------------------------------------------------------------


def test_nonces_are_sixteen_ascii_digits_and_do_not_repeat() -> None:
    # The manual: "x-nonce: 防重复提交(数字)", at least 10 characters, unique within the window.
    nonces = [new_nonce() for _ in range(200)]
    assert all(len(n) == 16 and n.isascii() and n.isdigit() for n in nonces), nonces
    assert len(set(nonces)) == len(nonces)
