#!/usr/bin/env python3
"""Regenerates the seed corpora in tests/fuzz/corpus/<target>/ from tests/data/test-vectors.json
and real-shaped WeCom messages. Crash regressions live next to the seeds as crash-*/regress-*
files and are never touched by this script. Run from anywhere: python3 tests/fuzz/make_corpus.py"""
import base64
import json
import os
import struct
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "corpus")
VECTORS = json.load(open(os.path.join(HERE, "..", "data", "test-vectors.json"), encoding="utf-8"))["vectors"]
V = {v["name"]: v for v in VECTORS}
STREAM0 = "s0102030405060708090a0b0c0d0e0f10"  # first stream id of a fresh instance over FakeHost


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def j(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


FROM = {"userid": "zhangsan"}
BASE = {"msgid": "CAIQz7HL8AUYwbTtqQMgAQ", "aibotid": "AIBOTID", "chattype": "single", "from": FROM,
        "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC"}
MESSAGES = {
    "text": j({**BASE, "msgtype": "text", "text": {"content": "你好，Clawdbot"}}),
    "text-group": j({**BASE, "chatid": "g1", "chattype": "group", "msgtype": "text",
                     "text": {"content": "@Clawdbot\u2005summarise this"}}),
    "text-quote": j({**BASE, "msgtype": "text", "text": {"content": "and this?"},
                     "quote": {"msgtype": "mixed", "mixed": {"msg_item": [
                         {"msgtype": "text", "text": {"content": "earlier"}},
                         {"msgtype": "image", "image": {"url": "https://x/i"}}]}}}),
    "mixed": j({**BASE, "msgtype": "mixed", "mixed": {"msg_item": [
        {"msgtype": "text", "text": {"content": "look"}},
        {"msgtype": "image", "image": {"url": "https://wework.qpic.cn/img1"}}]}}),
    "image": j({**BASE, "msgtype": "image", "image": {"url": "https://wework.qpic.cn/img2"}}),
    "voice": j({**BASE, "msgtype": "voice", "voice": {"content": "transcribed voice"}}),
    "file": j({**BASE, "msgtype": "file", "file": {"url": "https://wework.qpic.cn/f"}}),
    "stream-refresh": j({**BASE, "msgid": "r1", "msgtype": "stream", "stream": {"id": STREAM0}}),
    "stream-unknown": j({"msgid": "r2", "msgtype": "stream", "stream": {"id": "nope"}}),
    "event-enter": j({**BASE, "msgtype": "event", "event": {"eventtype": "enter_chat"}}),
    "event-card": j({**BASE, "msgtype": "event", "event": {"eventtype": "template_card_event",
                                                           "template_card_event": {"card_type": "x"}}}),
    "event-feedback": j({**BASE, "msgtype": "event", "event": {"eventtype": "feedback_event"}}),
    "unknown-type": j({**BASE, "msgtype": "location", "location": {}}),
    "numeric-ids": '{"msgid":4561255354251345929,"from":{"userid":12345},"msgtype":"text","text":{"content":"n"}}',
    "xml-text": "<xml><ToUserName><![CDATA[ww]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
                "<CreateTime>1409659813</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                "<Content><![CDATA[hello]]></Content><MsgId>4561255354251345929</MsgId><AgentID>218</AgentID></xml>",
    "xml-bot-text": "<xml><From><UserId>lisi</UserId></From><ChatId>g9</ChatId><ChatType>group</ChatType>"
                    "<MsgType>text</MsgType><Text><Content>@bot hi &amp; bye</Content></Text><MsgId>m9</MsgId></xml>",
    "xml-image": "<xml><FromUserName>u</FromUserName><MsgType>image</MsgType><PicUrl>https://p/1</PicUrl><MsgId>i1</MsgId></xml>",
    "xml-voice": "<xml><FromUserName>u</FromUserName><MsgType>voice</MsgType><Recognition>hi</Recognition><MsgId>v1</MsgId></xml>",
    "xml-event": "<xml><FromUserName>u</FromUserName><MsgType>event</MsgType><Event>enter_chat</Event></xml>",
    "xml-stream": "<xml><MsgType>stream</MsgType><Stream><Id>" + STREAM0 + "</Id></Stream></xml>",
    "official-invalid-json": V["official-json-example"]["plaintext"],
    "vector-text": V["bot-text-single"]["plaintext"],
    "bad-utf8": b'{"msgid":"m","from":{"userid":"u"},"msgtype":"text","text":{"content":"\xff\xfe"}}',
    "xml-charref-surrogate": "<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>&#xD800;</Content><MsgId>m</MsgId></xml>",
    "deep": "[" * 200 + "]" * 200,
}

# --- fuzz_message: the plaintexts themselves
for name, m in MESSAGES.items():
    write("fuzz_message", name, m)

# --- fuzz_handle_signed: flags byte + plaintexts separated by NUL
def b(s):
    return s.encode("utf-8") if isinstance(s, str) else s

for name, m in MESSAGES.items():
    write("fuzz_handle_signed", name, b"\x00" + b(m))
write("fuzz_handle_signed", "text-then-refresh", b"\x20" + b(MESSAGES["text"]) + b"\x00" + b(MESSAGES["stream-refresh"]))
write("fuzz_handle_signed", "text-finish-refresh", b"\x60" + b(MESSAGES["text"]) + b"\x00" + b(MESSAGES["stream-refresh"]))
write("fuzz_handle_signed", "xml-text-then-refresh", b"\x01" + b(MESSAGES["xml-text"]) + b"\x00" + b(MESSAGES["xml-stream"]))
write("fuzz_handle_signed", "duplicate-msgid", b"\x00" + b(MESSAGES["text"]) + b"\x00" + b(MESSAGES["text"]))
write("fuzz_handle_signed", "pairing", b"\x08" + b(MESSAGES["text"]) + b"\x00" + b(MESSAGES["text"]))
write("fuzz_handle_signed", "allowlist-group", b"\x10" + b(MESSAGES["text-group"]))
write("fuzz_handle_signed", "welcome", b"\x18" + b(MESSAGES["event-enter"]) + b"\x00" + b(MESSAGES["text-group"]))
write("fuzz_handle_signed", "refused", b"\x04" + b(MESSAGES["voice"]))
write("fuzz_handle_signed", "verify-url", b"\x02" + b(V["verify-url"]["plaintext"]))

# --- fuzz_query
def q(v, echostr=None):
    s = "msg_signature=%s&timestamp=%s&nonce=%s" % (v.get("msg_signature") or v.get("msgsignature"), v["timestamp"], v["nonce"])
    if echostr is not None:
        s += "&echostr=" + urllib.parse.quote(echostr, safe="")
    return s

write("fuzz_query", "verify-url", q(V["verify-url"], V["verify-url"]["echostr"]))
write("fuzz_query", "verify-url-raw-plus", q(V["verify-url"]) + "&echostr=" + V["verify-url"]["echostr"])
write("fuzz_query", "post", q(V["bot-text-single"]))
write("fuzz_query", "post-extra", q(V["bot-text-single"]) + "&foo=bar&&x")
write("fuzz_query", "missing", "timestamp=1&nonce=2")
write("fuzz_query", "duplicate", "msg_signature=a&msg_signature=b&timestamp=1&nonce=2")
write("fuzz_query", "bad-percent", "msg_signature=a%zz&timestamp=1&nonce=%4")
write("fuzz_query", "bad-timestamp", "msg_signature=a&timestamp=12a&nonce=2&echostr=x")
write("fuzz_query", "encoded-names", "msg%5Fsignature=a&time%73tamp=1&nonce=%32&echostr=%2B%2F%3D")
write("fuzz_query", "empty-values", "msg_signature=&timestamp=&nonce=&echostr=")

# --- fuzz_request_envelope / fuzz_reply_envelope
enc = V["bot-text-single"]["encrypt"]
env = {
    "json": j({"encrypt": enc}),
    "json-upper": j({"Encrypt": enc}),
    "json-extra": j({"encrypt": enc, "ToUserName": "x", "AgentID": 1}),
    "json-bom-ws": "\ufeff \r\n" + j({"encrypt": enc}),
    "json-number": '{"encrypt":12}',
    "json-empty": '{"encrypt":""}',
    "json-array": '[{"encrypt":"x"}]',
    "json-truncated": '{"encrypt":"' + enc[:20],
    "json-dup": '{"encrypt":"a","encrypt":"b"}',
    "xml": "<xml><ToUserName><![CDATA[ww]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>",
    "xml-pcdata": "<xml><Encrypt>" + enc + "</Encrypt></xml>",
    "xml-doctype": '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY e "x">]><xml><Encrypt>&e;</Encrypt></xml>',
    "xml-empty": "<xml><Encrypt></Encrypt></xml>",
    "xml-broken": "<xml><Encrypt>abc</Encrypt",
    "deep": "[" * 300 + "]" * 300,
    "deep-object": '{"a":' * 100 + "1" + "}" * 100,
}
for name, e in env.items():
    write("fuzz_request_envelope", name, e)
r = V["bot-stream-reply"]
replies = {
    "json": j({"encrypt": r["encrypt"], "msgsignature": r["msgsignature"], "timestamp": r["timestamp"], "nonce": r["nonce"]}),
    "json-int-ts": '{"encrypt":"e","msgsignature":"s","timestamp":1732500001,"nonce":"n"}',
    "json-missing": '{"encrypt":"e"}',
    "xml": "<xml><Encrypt><![CDATA[" + r["encrypt"] + "]]></Encrypt><MsgSignature><![CDATA[" + r["msgsignature"] +
           "]]></MsgSignature><TimeStamp>" + r["timestamp"] + "</TimeStamp><Nonce><![CDATA[" + r["nonce"] + "]]></Nonce></xml>",
    "xml-partial": "<xml><Encrypt>e</Encrypt></xml>",
    "empty": "",
    "garbage": "hello",
}
for name, e in replies.items():
    write("fuzz_reply_envelope", name, e)

# --- fuzz_decrypt: mode byte + payload (see fuzz_decrypt.cpp)
for v in VECTORS:
    ct = v.get("encrypt") or v.get("echostr")
    rid = 8 if v.get("receiveId") else 0
    write("fuzz_decrypt", "b64-" + v["name"], bytes([0 | rid]) + ct.encode())
    write("fuzz_decrypt", "raw-" + v["name"], bytes([1 | rid]) + base64.b64decode(ct))
    write("fuzz_decrypt", "roundtrip-" + v["name"], bytes([3 | rid]) + v["plaintext"].encode("utf-8"))
    write("fuzz_decrypt", "media-" + v["name"], bytes([4]) + base64.b64decode(ct))

def frame(msg, rid=b"", length=None, pad=None):
    body = bytes(range(16)) + struct.pack(">I", len(msg) if length is None else length) + msg + rid
    p = 32 - len(body) % 32 if pad is None else pad
    return body + bytes([p]) * p

write("fuzz_decrypt", "frame-ok", b"\x02" + frame(b'{"msgtype":"text"}'))
write("fuzz_decrypt", "frame-corpid", b"\x0a" + frame(b"hello", b"ww1436e0e65a779aee"))
write("fuzz_decrypt", "frame-long-length", b"\x02" + frame(b"abc", length=0xFFFFFFFF))
write("fuzz_decrypt", "frame-pad-32", b"\x02" + bytes(range(16)) + struct.pack(">I", 12) + b"x" * 12 + b"\x20" * 32)
write("fuzz_decrypt", "frame-pad-zero", b"\x02" + frame(b"hello")[:-1] + b"\x00")
write("fuzz_decrypt", "frame-short", b"\x02" + b"\x10" * 16)
write("fuzz_decrypt", "b64-bad", b"\x00" + b"ab=c")
write("fuzz_decrypt", "b64-48", b"\x01" + bytes(48))
write("fuzz_decrypt", "unpad-48", b"\x04" + bytes(32) + b"\x10" * 16)
write("fuzz_decrypt", "unpad-inconsistent", b"\x04" + bytes(30) + b"\x03\x02")

# --- fuzz_config: the channel docs' examples (as JSON) and near misses
KEY = V["verify-url"]["encodingAESKey"]
configs = {
    "docs-minimal": {"enabled": True, "webhookPath": "/wecom", "token": "YOUR_TOKEN", "encodingAESKey": KEY,
                     "receiveId": "", "dm": {"policy": "pairing"}},
    "docs-single": {"enabled": True, "webhookPath": "/wecom", "token": "YOUR_TOKEN", "encodingAESKey": KEY,
                    "receiveId": "", "welcomeText": "你好，我是 Clawdbot。",
                    "dm": {"policy": "pairing", "allowFrom": ["userid1", "userid2"]}},
    "docs-multi": {"enabled": True, "defaultAccount": "default", "accounts": {
        "default": {"webhookPath": "/wecom", "token": "TOKEN_A", "encodingAESKey": KEY, "receiveId": ""},
        "team2": {"webhookPath": "/wecom-team2", "token": "TOKEN_B", "encodingAESKey": KEY, "receiveId": ""}}},
    "full": {"token": "T", "encodingAESKey": KEY, "groupPolicy": "allowlist", "groupAllowFrom": ["g1", 42],
             "groups": {"*": {"requireMention": True}, "g1": {"enabled": False}}, "streamPlaceholder": "…",
             "rejectText": "no", "maxBodyBytes": 2048, "streamTtlSeconds": 60, "refreshWarnSeconds": 3,
             "maxOpenStreams": 16, "dm": {"policy": "open", "allowFrom": ["*"]}},
    "bad-key": {"token": "T", "encodingAESKey": KEY[:42]},
    "bad-dup-path": {"accounts": {"a": {"token": "T", "encodingAESKey": KEY}, "b": {"token": "U", "encodingAESKey": KEY}}},
    "bad-unknown-key": {"token": "T", "encodingAESKey": KEY, "webhookpath": "/x"},
}
for name, c in configs.items():
    write("fuzz_config", name, j(c))
write("fuzz_config", "deep-groups", '{"token":"T","encodingAESKey":"' + KEY + '","groups":' + "[" * 200 + "]" * 200 + "}")
write("fuzz_config", "not-json", "{channels: {wecom: {}}}")

# --- fuzz_handle: method byte + "path\nquery\nbody"
def req(method_index, path, query, body):
    return bytes([method_index]) + (path + "\n" + query + "\n").encode() + b(body)

bt = V["bot-text-single"]
write("fuzz_handle", "post-vector", req(0, "/wecom", q(bt), j({"encrypt": bt["encrypt"]})))
ox = V["official-json-example"]
write("fuzz_handle", "post-official-receiveid", req(0, "/wecom", q(ox), j({"encrypt": ox["encrypt"]})))
write("fuzz_handle", "post-xml", req(0, "/wecom/", q(bt), env["xml"]))
vu = V["verify-url"]
write("fuzz_handle", "get-verify", req(1, "/wecom", q(vu, vu["echostr"]), ""))
write("fuzz_handle", "get-browser", req(1, "/wecom", "", ""))
write("fuzz_handle", "put", req(2, "/wecom", q(bt), ""))
write("fuzz_handle", "not-found", req(0, "/other", "", ""))
write("fuzz_handle", "bad-sig", req(0, "/wecom", "msg_signature=" + "0" * 40 + "&timestamp=1&nonce=2", j({"encrypt": bt["encrypt"]})))
write("fuzz_handle", "too-large", req(0, "/wecom", q(bt), "{" + " " * 5000 + "}"))
write("fuzz_handle", "deep", req(0, "/wecom", q(bt), "[" * 2000))
write("fuzz_handle", "doctype", req(0, "/wecom", q(bt), env["xml-doctype"]))
write("fuzz_handle", "path-newline", req(0, "/we\r\ncom", "", ""))
print("corpora written under", ROOT)
