// The Node peer's per-request crypto work alone, without HTTP: what one stream refresh costs
// @wecom/crypto (signature check, decrypt, JSON.parse of the message, encrypt of a 395-byte
// reply, its signature). docs/performance.md quotes it next to BM_InstanceHandleRefresh.
//   NODE_PATH=~/.cache/clawdbot-wecom/bench-node/node_modules node bench/node-peer/crypto-loop.mjs [iterations]
// (bench/compare_node.sh installs @wecom/crypto there on its first run.)
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { getSignature, decrypt, encrypt } = require('@wecom/crypto');

const token = 'hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo';  // bench/lib.sh's test credentials
const aesKey = '6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt';
const message = JSON.stringify({
  msgid: 'r1', aibotid: 'B', chattype: 'single', from: { userid: 'bench' }, msgtype: 'stream',
  stream: { id: 'x'.repeat(32) },
});
const sealed = encrypt(aesKey, message, '');
const reply = 'y'.repeat(395);
const iterations = Number(process.argv[2] ?? 50000);

let sink = 0;
const start = process.hrtime.bigint();
for (let i = 0; i < iterations; i += 1) {
  sink += getSignature(token, '1700000000', '8427661', sealed).length;
  const plain = decrypt(aesKey, sealed);
  sink += JSON.parse(plain.message).msgid.length;
  const answer = encrypt(aesKey, reply, '');
  sink += getSignature(token, '1700000000', '8427661', answer).length;
}
const perOpUs = Number(process.hrtime.bigint() - start) / iterations / 1000;
console.log(`node ${process.version}: ${perOpUs.toFixed(1)} us per request (${iterations} iterations, check ${sink % 10})`);
