// The Node peer for bench/compare_node.sh: a WeCom intelligent-bot webhook built on the official
// @wecom/crypto package, doing the same per-request work as clawdbot-wecom-gateway on a stream
// refresh: parse the query, verify msg_signature (constant time), decrypt, check the receiveId,
// parse the JSON message, look the stream up in a Map, build the stream reply JSON, encrypt and
// sign it, answer the JSON envelope. Text messages open a stream whose answer ("echo: <text>",
// like the gateway's echo agent with delayMs 0) is final at once, so refreshes of it are served
// from the Map. Benchmark fixture, not a product: one account, no policy, no TTL sweep.
//   node server.mjs --token T --aes-key K [--receive-id R] [--port 0] [--path /wecom]
// Prints "listening on http://127.0.0.1:<port>" once ready. NODE_PATH must reach @wecom/crypto
// (compare_node.sh installs it into a cache directory, never into the repository).
import http from 'node:http';
import { createRequire } from 'node:module';
import { randomBytes, timingSafeEqual } from 'node:crypto';

const require = createRequire(import.meta.url);
const { getSignature, decrypt, encrypt } = require('@wecom/crypto');

const args = new Map();
for (let i = 2; i + 1 < process.argv.length; i += 2) args.set(process.argv[i], process.argv[i + 1]);
const token = args.get('--token');
const aesKey = args.get('--aes-key');
const receiveId = args.get('--receive-id') ?? '';
const webhookPath = args.get('--path') ?? '/wecom';
const port = Number(args.get('--port') ?? 0);
if (!token || !aesKey || aesKey.length !== 43) {
  console.error('usage: node server.mjs --token T --aes-key K(43 chars) [--receive-id R] [--port N] [--path /wecom]');
  process.exit(2);
}

const kMaxBodyBytes = 1024 * 1024;     // the plugin's maxBodyBytes default
const kMaxContentBytes = 20480;        // WeCom's stream content cap
const streams = new Map();             // stream id → { content, finish }
const byMsgid = new Map();             // msgid → stream id (WeCom retries reuse the msgid)

function answer(res, status, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function signatureMatches(expected, timestamp, nonce, encrypted) {
  const actual = Buffer.from(getSignature(token, timestamp, nonce, encrypted));
  const given = Buffer.from(expected);
  return given.length === actual.length && timingSafeEqual(given, actual);
}

function seal(plaintext, nonce) {
  const encrypted = encrypt(aesKey, plaintext, receiveId, randomBytes(16));
  const timestamp = String(Math.floor(Date.now() / 1000));
  return JSON.stringify({ encrypt: encrypted, msgsignature: getSignature(token, timestamp, nonce, encrypted), timestamp, nonce });
}

function streamReply(id, finish, content) {
  return JSON.stringify({ msgtype: 'stream', stream: { id, finish, content } });
}

function capUtf8(text) {
  const bytes = Buffer.from(text);
  if (bytes.length <= kMaxContentBytes) return text;
  let end = kMaxContentBytes;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end -= 1;  // never cut a UTF-8 sequence
  return bytes.subarray(0, end).toString();
}

function handleMessage(msg) {
  if (msg.msgtype === 'stream') {
    const id = msg.stream?.id;
    const s = typeof id === 'string' ? streams.get(id) : undefined;
    if (!s) return streamReply(String(id ?? ''), true, '');
    return streamReply(id, s.finish, s.content);
  }
  if (msg.msgtype === 'text') {
    let id = byMsgid.get(msg.msgid);
    if (!id) {
      id = `s${randomBytes(16).toString('hex')}`;
      byMsgid.set(msg.msgid, id);
      streams.set(id, { content: capUtf8(`echo: ${msg.text?.content ?? ''}`), finish: true });
    }
    const s = streams.get(id);
    return streamReply(id, s.finish, s.content);
  }
  return '';
}

function handle(req, res, body) {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  if (path !== webhookPath && path !== `${webhookPath}/`) return answer(res, 404, 'not found');
  if (req.method !== 'POST') return answer(res, 405, 'method not allowed');
  const query = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
  const signature = query.get('msg_signature');
  const timestamp = query.get('timestamp');
  const nonce = query.get('nonce');
  if (!signature || !timestamp || !nonce) return answer(res, 400, 'missing query params');
  if (!/^[0-9]{1,20}$/.test(timestamp)) return answer(res, 400, 'bad query');
  let envelope;
  try {
    envelope = JSON.parse(body);
  } catch {
    return answer(res, 400, 'malformed envelope');
  }
  if (typeof envelope?.encrypt !== 'string') return answer(res, 400, 'malformed envelope');
  if (!signatureMatches(signature, timestamp, nonce, envelope.encrypt)) return answer(res, 401, 'invalid signature');
  let msg;
  try {
    const plain = decrypt(aesKey, envelope.encrypt);
    if (plain.id !== receiveId) return answer(res, 400, 'receiveId mismatch');
    msg = JSON.parse(plain.message);
  } catch {
    return answer(res, 400, 'decrypt failed');
  }
  const reply = handleMessage(msg);
  if (!reply) return answer(res, 200, '');
  return answer(res, 200, seal(reply, nonce));
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= kMaxBodyBytes) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > kMaxBodyBytes) return answer(res, 413, 'body too large');
    handle(req, res, Buffer.concat(chunks).toString());
  });
});
server.keepAliveTimeout = 5000;  // like the gateway: idle keep-alive connections close after 5 s
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
