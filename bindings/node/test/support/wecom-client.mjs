// A tiny WeCom peer for the node tests: signs, encrypts and decrypts like WeCom does, so the
// bridge tests need neither wecom-sim nor the network. The plugin itself never does crypto in
// JS: this file exists only to talk to it from the test side.
import crypto from "node:crypto";

export function keyOf(encodingAESKey) {
  const key = Buffer.from(`${encodingAESKey}=`, "base64");
  if (key.length !== 32) throw new Error("EncodingAESKey must decode to 32 bytes");
  return key;
}

export function sign(token, timestamp, nonce, encrypt) {
  return crypto.createHash("sha1").update([token, String(timestamp), String(nonce), encrypt].sort().join("")).digest("hex");
}

export function encrypt(encodingAESKey, plaintext, receiveId = "") {
  const key = keyOf(encodingAESKey);
  const msg = Buffer.from(plaintext, "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(msg.length);
  let body = Buffer.concat([crypto.randomBytes(16), len, msg, Buffer.from(receiveId, "utf8")]);
  const pad = 32 - (body.length % 32);
  body = Buffer.concat([body, Buffer.alloc(pad, pad)]);
  const cipher = crypto.createCipheriv("aes-256-cbc", key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(body), cipher.final()]).toString("base64");
}

// Media as WeCom serves it: AES-256-CBC with the account key/IV and 32-byte padding, no framing.
export function encryptMedia(encodingAESKey, bytes) {
  const key = keyOf(encodingAESKey);
  const pad = 32 - (bytes.length % 32);
  const cipher = crypto.createCipheriv("aes-256-cbc", key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([bytes, Buffer.alloc(pad, pad)])), cipher.final()]);
}

export function decrypt(encodingAESKey, b64) {
  const key = keyOf(encodingAESKey);
  const decipher = crypto.createDecipheriv("aes-256-cbc", key, key.subarray(0, 16));
  decipher.setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(Buffer.from(b64, "base64")), decipher.final()]);
  const pad = plain[plain.length - 1];
  const body = plain.subarray(0, plain.length - pad);
  const n = body.readUInt32BE(16);
  return body.subarray(20, 20 + n).toString("utf8");
}

/** The query string and body of a signed callback POST carrying `message` (an object). */
export function callbackRequest({ token, aesKey, message, receiveId = "" }) {
  const enc = encrypt(aesKey, JSON.stringify(message), receiveId);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = String(crypto.randomInt(1e8));
  const signature = sign(token, timestamp, nonce, enc);
  const query = new URLSearchParams({ msg_signature: signature, timestamp, nonce }).toString();
  return { query, body: JSON.stringify({ encrypt: enc }) };
}

export function verifyUrlQuery({ token, aesKey, echo = `echo-${crypto.randomUUID()}`, receiveId = "" }) {
  const echostr = encrypt(aesKey, echo, receiveId);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = String(crypto.randomInt(1e8));
  const signature = sign(token, timestamp, nonce, echostr);
  return { query: new URLSearchParams({ msg_signature: signature, timestamp, nonce, echostr }).toString(), echo };
}

/** Decrypts a passive reply body ({encrypt, msgsignature, timestamp, nonce}) and checks its signature. */
export function openReply({ token, aesKey, body }) {
  const text = Buffer.isBuffer(body) ? body.toString("utf8") : String(body);
  if (!text) return null;
  const env = JSON.parse(text);
  if (sign(token, env.timestamp, env.nonce, env.encrypt) !== env.msgsignature) throw new Error("reply signature mismatch");
  return JSON.parse(decrypt(aesKey, env.encrypt));
}

export function textMessage({ user, text, chatId, msgid = crypto.randomUUID() }) {
  const m = {
    msgid,
    aibotid: "AIBOT",
    chattype: chatId ? "group" : "single",
    from: { userid: user },
    response_url: "http://127.0.0.1:9/unused",
    msgtype: "text",
    text: { content: text },
  };
  if (chatId) m.chatid = chatId;
  return m;
}

export function refreshMessage({ user, streamId, chatId, msgid = crypto.randomUUID() }) {
  const m = { msgid, aibotid: "AIBOT", chattype: chatId ? "group" : "single", from: { userid: user }, msgtype: "stream", stream: { id: streamId } };
  if (chatId) m.chatid = chatId;
  return m;
}

/**
 * fetch with one retry on a connection-level failure: undici reuses kept-alive sockets, and a
 * server closing an idle one at the same moment fails the request before it was sent.
 */
export async function fetchRetry(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    await new Promise((r) => setTimeout(r, 50));
    return await fetch(url, init);
  }
}

/**
 * Plays WeCom against an HTTP URL: posts `text`, then refreshes the stream about every
 * `intervalMs` until finish (or `timeoutMs`). Returns { first, final, refreshes }.
 */
export async function sendAndFollow({ url, token, aesKey, user, text, chatId, intervalMs = 300, timeoutMs = 30000 }) {
  const post = async (message) => {
    const { query, body } = callbackRequest({ token, aesKey, message });
    const res = await fetchRetry(`${url}?${query}`, { method: "POST", body, headers: { "content-type": "application/json" } });
    const raw = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`POST ${url} → ${res.status}: ${raw.toString("utf8")}`);
    return openReply({ token, aesKey, body: raw });
  };
  const first = await post(textMessage({ user, text, chatId }));
  let last = first;
  let refreshes = 0;
  const deadline = Date.now() + timeoutMs;
  while (last?.msgtype === "stream" && !last.stream.finish) {
    if (Date.now() > deadline) throw new Error(`stream not finished after ${timeoutMs} ms: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
    last = await post(refreshMessage({ user, chatId, streamId: first.stream.id }));
    refreshes += 1;
  }
  return { first, final: last, refreshes };
}
