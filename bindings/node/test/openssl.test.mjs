// Proves, inside node, that libclawdbot_wecom.so uses the OpenSSL it was built with and not the
// one node exports (node 24 exports OpenSSL 3.5 symbols from its executable; the dynamic linker
// would bind a plugin's undefined EVP_* references to those first). The library is loaded in a
// child node with LD_DEBUG=bindings, exercises its crypto (probe: AES round trip, SHA-1
// signature, RAND_bytes), and the loader's trace must show no OpenSSL symbol of the library
// bound to another object.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { test } from "node:test";

const require = createRequire(import.meta.url);
const native = require("../lib/native.js");
const libraryPath = native.defaultLibraryPath();
const OPENSSL_SYMBOL = /^(EVP_|OPENSSL_|OpenSSL_|RAND_|CRYPTO_|ERR_|BIO_|SHA1)/;

test("the library imports no OpenSSL symbol (static, hidden libcrypto)", (t) => {
  let undefinedSyms;
  try {
    undefinedSyms = execFileSync("nm", ["-D", "--undefined-only", libraryPath], { encoding: "utf8" });
  } catch {
    t.skip("nm not available");
    return;
  }
  const openssl = undefinedSyms
    .split("\n")
    .map((l) => l.trim().split(/\s+/).pop())
    .filter((s) => s && OPENSSL_SYMBOL.test(s));
  assert.deepEqual(openssl, [], `imports ${openssl.join(", ")}: build with -DCWC_STATIC_OPENSSL=ON`);
});

test("inside node, the library's crypto binds to its own OpenSSL, not node's", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cwc-ldd-"));
  try {
    const script = `
      const native = require(${JSON.stringify(require.resolve("../lib/native.js"))});
      const lib = native.loadLibrary({ libraryPath: ${JSON.stringify(libraryPath)} });
      const inst = lib.createInstance({ token: "t", encodingAESKey: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt" }, { log() {}, dispatch() { return true; } });
      const probe = inst.probe("");
      inst.destroy();
      console.log(JSON.stringify({ ok: probe.ok, nodeOpenssl: process.versions.openssl }));
    `;
    const out = spawnSync(process.execPath, ["-e", script], {
      env: { ...process.env, LD_DEBUG: "bindings", LD_DEBUG_OUTPUT: path.join(dir, "ld") },
      encoding: "utf8",
    });
    assert.equal(out.status, 0, out.stderr);
    const result = JSON.parse(out.stdout.trim().split("\n").pop());
    assert.equal(result.ok, true, "AES round trip + signed VerifyURL inside node");
    const trace = fs
      .readdirSync(dir)
      .map((f) => fs.readFileSync(path.join(dir, f), "utf8"))
      .join("\n");
    const base = path.basename(libraryPath);
    const fromLib = trace.split("\n").filter((l) => l.includes(`binding file ${libraryPath}`) || l.includes(`/${base} [0] to`));
    assert.ok(fromLib.length > 0 || trace.includes(base), "the loader trace mentions the library (LD_DEBUG works here)");
    const leaks = fromLib.filter((l) => {
      const sym = /symbol `([^']+)'/.exec(l)?.[1] ?? "";
      return OPENSSL_SYMBOL.test(sym);
    });
    assert.deepEqual(leaks, [], `OpenSSL symbols bound outside the library (node has OpenSSL ${result.nodeOpenssl})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
