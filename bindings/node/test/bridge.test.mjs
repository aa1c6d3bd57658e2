// Fast tests of the JS bridge: libclawdbot_wecom.so loaded through koffi, without Clawdbot.
// The library comes from $CLAWDBOT_WECOM_LIBRARY (CTest sets it to the build tree's copy).
//   CLAWDBOT_WECOM_LIBRARY=build/release/src/libclawdbot_wecom.so node --test test/bridge.test.mjs
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";

import * as wc from "./support/wecom-client.mjs";

const require = createRequire(import.meta.url);
const native = require("../lib/native.js");
const { ClawdbotPairingStore } = require("../lib/store.js");
const accounts = require("../lib/accounts.js");
const plugin = require("../lib/index.js");

const TOKEN = "tok123";
const AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
const TOKEN_B = "tokB";
const AES_KEY_B = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

const library = native.loadLibrary();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cwc-node-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function collectingHooks(extra = {}) {
  const logs = [];
  const dispatched = [];
  return {
    logs,
    dispatched,
    hooks: {
      log: (level, accountId, line) => logs.push({ level, accountId, line }),
      dispatch: (m) => {
        dispatched.push(m);
        return true;
      },
      ...extra,
    },
  };
}

function post(instance, message, { token = TOKEN, aesKey = AES_KEY, pathName = "/wecom" } = {}) {
  const { query, body } = wc.callbackRequest({ token, aesKey, message });
  return instance.handleHttp({ method: "POST", path: pathName, query, body, contentType: "application/json" });
}

describe("native library through koffi", () => {
  test("version handshake", () => {
    assert.equal(library.abiVersionString, "1.0");
    assert.match(library.pluginVersion, /^\d+\.\d+\.\d+/);
  });

  test("VerifyURL answers the bare plaintext; a wrong token is 401 and logged", () => {
    const { logs, hooks } = collectingHooks();
    const inst = library.createInstance({ token: TOKEN, encodingAESKey: AES_KEY, dm: { policy: "open", allowFrom: ["*"] } }, hooks);
    try {
      const v = wc.verifyUrlQuery({ token: TOKEN, aesKey: AES_KEY });
      const ok = inst.handleHttp({ method: "GET", path: "/wecom", query: v.query });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.toString("utf8"), v.echo);
      const bad = wc.verifyUrlQuery({ token: "WRONG", aesKey: AES_KEY });
      const res = inst.handleHttp({ method: "GET", path: "/wecom", query: bad.query, remoteAddr: "10.9.8.7" });
      assert.equal(res.status, 401);
      assert.ok(logs.some((l) => l.level === native.LogLevel.WARN && /invalid signature/.test(l.line) && l.accountId === "default"));
    } finally {
      inst.destroy();
    }
  });

  test("a message is dispatched synchronously with copied fields; pushes and finish reach the refresh", () => {
    const { dispatched, hooks } = collectingHooks();
    const inst = library.createInstance({ token: TOKEN, encodingAESKey: AES_KEY, dm: { policy: "open", allowFrom: ["*"] } }, hooks);
    try {
      const first = wc.openReply({ token: TOKEN, aesKey: AES_KEY, body: post(inst, wc.textMessage({ user: "alice", text: "你好，Clawdbot" })).body });
      assert.equal(first.stream.finish, false);
      assert.equal(dispatched.length, 1, "callback_dispatch runs inside on_http_request");
      const m = dispatched[0];
      assert.equal(m.text, "你好，Clawdbot");
      assert.equal(m.target, "wecom:alice");
      assert.equal(m.peerKind, "direct");
      assert.equal(m.streamId, first.stream.id);
      assert.equal(inst.push(m.streamId, "第一段", native.PushMode.APPEND), native.Status.OK);
      assert.equal(inst.push(m.streamId, " two", native.PushMode.APPEND), native.Status.OK);
      assert.equal(inst.finish(m.streamId, native.FinishKind.DONE), native.Status.OK);
      assert.equal(inst.push(m.streamId, "late"), native.Status.STREAM_CLOSED);
      assert.equal(inst.push("no-such-stream", "x"), native.Status.NOT_FOUND);
      const refresh = wc.openReply({
        token: TOKEN,
        aesKey: AES_KEY,
        body: post(inst, wc.refreshMessage({ user: "alice", streamId: first.stream.id })).body,
      });
      assert.deepEqual(refresh.stream, { id: first.stream.id, finish: true, content: "第一段 two" });
      const group = wc.openReply({ token: TOKEN, aesKey: AES_KEY, body: post(inst, wc.textMessage({ user: "bob", chatId: "chat1", text: "@bot hi" })).body });
      assert.equal(group.stream.finish, false);
      assert.equal(dispatched[1].target, "wecom:group:chat1");
      assert.equal(dispatched[1].peerKind, "group");
    } finally {
      inst.destroy();
    }
  });

  test("sendText is refused with the library's passive-reply text", () => {
    const inst = library.createInstance({ token: TOKEN, encodingAESKey: AES_KEY }, collectingHooks().hooks);
    try {
      const r = inst.sendText("default", "wecom:alice", "hi");
      assert.equal(r.ok, false);
      assert.match(r.error, /WeCom intelligent bots are passive-reply only/);
    } finally {
      inst.destroy();
    }
  });

  test("probe returns a ready-made signed VerifyURL request", () => {
    const inst = library.createInstance({ token: TOKEN, encodingAESKey: AES_KEY }, collectingHooks().hooks);
    try {
      const p = inst.probe("default");
      assert.equal(p.ok, true);
      const a = p.accounts[0];
      assert.equal(a.cryptoRoundTrip, true);
      const res = inst.handleHttp({ method: a.request.method, path: a.request.path, query: a.request.query });
      assert.equal(res.body.toString(), a.expectBody);
    } finally {
      inst.destroy();
    }
  });

  test("a config error names the key", () => {
    assert.throws(
      () => library.createInstance({ token: TOKEN, encodingAESKey: "short" }, collectingHooks().hooks),
      (err) => err instanceof native.WecomAbiError && err.statusName === "CONFIG" && /encodingAESKey must be 43 characters/.test(err.message),
    );
  });

  test("a missing library is one clear WecomLoadError", () => {
    assert.throws(
      () => native.loadLibrary({ libraryPath: path.join(tmp, "nope", "libclawdbot_wecom.so") }),
      (err) => err instanceof native.WecomLoadError && /native library not found/.test(err.message) && /CLAWDBOT_WECOM_LIBRARY/.test(err.message),
    );
    const junk = path.join(tmp, "libjunk.so");
    fs.writeFileSync(junk, "not an ELF file");
    assert.throws(() => native.loadLibrary({ libraryPath: junk }), (err) => err instanceof native.WecomLoadError && /cannot load/.test(err.message));
  });
});

describe("pairing store in Clawdbot's file format", () => {
  test("requests and approvals round-trip through Clawdbot's files, per account", () => {
    const dir = path.join(tmp, "credentials");
    const store = new ClawdbotPairingStore({ credentialsDir: dir });
    const { dispatched, hooks } = collectingHooks({ storeGet: (ns, k) => store.get(ns, k), storePut: (ns, k, v) => store.put(ns, k, v) });
    const cfg = {
      defaultAccount: "default",
      accounts: {
        default: { webhookPath: "/wecom", token: TOKEN, encodingAESKey: AES_KEY },
        team2: { webhookPath: "/wecom-team2", token: TOKEN_B, encodingAESKey: AES_KEY_B },
      },
    };
    const inst = library.createInstance(cfg, hooks);
    try {
      const reply = wc.openReply({ token: TOKEN, aesKey: AES_KEY, body: post(inst, wc.textMessage({ user: "carol", text: "hi" })).body });
      const code = /Pairing code: ([A-Z0-9]{8})/.exec(reply.stream.content)?.[1];
      assert.ok(code, reply.stream.content);
      assert.equal(dispatched.length, 0);
      post(inst, wc.textMessage({ user: "carol", text: "hi" }), { token: TOKEN_B, aesKey: AES_KEY_B, pathName: "/wecom-team2" });

      const file = JSON.parse(fs.readFileSync(path.join(dir, "wecom-pairing.json"), "utf8"));
      assert.equal(file.version, 1);
      const ids = file.requests.map((r) => r.id).sort();
      assert.deepEqual(ids, ["carol", "team2:carol"]);
      const mine = file.requests.find((r) => r.id === "carol");
      assert.equal(mine.code, code);
      assert.ok(!Number.isNaN(Date.parse(mine.createdAt)));
      assert.deepEqual(mine.meta, { accountId: "default" });

      // What `clawdbot pairing approve wecom <code>` does (pairing-store.js): drop the request,
      // add its id to wecom-allowFrom.json.
      file.requests = file.requests.filter((r) => r.code !== code);
      fs.writeFileSync(path.join(dir, "wecom-pairing.json"), JSON.stringify(file, null, 2));
      fs.writeFileSync(path.join(dir, "wecom-allowFrom.json"), JSON.stringify({ version: 1, allowFrom: ["carol"] }, null, 2));

      const next = wc.openReply({ token: TOKEN, aesKey: AES_KEY, body: post(inst, wc.textMessage({ user: "carol", text: "now?" })).body });
      assert.equal(next.stream.finish, false, "approved sender reaches the agent");
      assert.equal(dispatched.length, 1);
      // Approval for account default does not open team2.
      const other = wc.openReply({
        token: TOKEN_B,
        aesKey: AES_KEY_B,
        body: post(inst, wc.textMessage({ user: "carol", text: "team2?" }), { token: TOKEN_B, aesKey: AES_KEY_B, pathName: "/wecom-team2" }).body,
      });
      assert.match(other.stream.content, /Pairing code/);
      assert.equal(inst.pairingList("team2").requests.length, 1);

      // The ABI's own approve writes the same files.
      const team2Code = inst.pairingList("team2").requests[0].code;
      assert.deepEqual(inst.pairingApprove("", team2Code.toLowerCase()), { accountId: "team2", userId: "carol" });
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, "wecom-allowFrom.json"), "utf8")).allowFrom, ["carol", "team2:carol"]);
      assert.equal(fs.existsSync(path.join(dir, "wecom-pairing.json.lock")), false, "lock released");
    } finally {
      inst.destroy();
    }
  });

  test("a held fresh lock makes a write give up, a stale one is broken", () => {
    const dir = path.join(tmp, "locks");
    const store = new ClawdbotPairingStore({ credentialsDir: dir, log: () => {} });
    assert.equal(store.put("wecom:default:allowFrom", "list", '["a"]'), true);
    const lock = `${fs.realpathSync(path.join(dir, "wecom-allowFrom.json"))}.lock`;
    fs.mkdirSync(lock);
    const t0 = Date.now();
    assert.equal(store.put("wecom:default:allowFrom", "list", '["b"]'), false);
    assert.ok(Date.now() - t0 >= 1500);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, old, old);
    assert.equal(store.put("wecom:default:allowFrom", "list", '["b"]'), true);
    assert.equal(store.get("wecom:default:allowFrom", "list"), '["b"]');
  });
});

describe("accounts read-out", () => {
  test("single and multi-account shapes", () => {
    const single = { channels: { wecom: { token: "t", encodingAESKey: AES_KEY, webhookPath: "/bot/", dm: { policy: "open" } } } };
    assert.deepEqual(accounts.listAccountIds(single), ["default"]);
    const a = accounts.resolveAccount(single, "default");
    assert.equal(a.webhookPath, "/bot");
    assert.equal(a.configured, true);
    assert.equal(a.dmPolicy, "open");
    const multi = { channels: { wecom: { dm: { policy: "allowlist" }, defaultAccount: "b", accounts: { a: { token: "x", encodingAESKey: AES_KEY }, b: { webhookPath: "/b", enabled: false } } } } };
    assert.deepEqual(accounts.listAccountIds(multi), ["a", "b"]);
    assert.equal(accounts.defaultAccountId(multi), "b");
    assert.equal(accounts.resolveAccount(multi, "a").dmPolicy, "allowlist");
    assert.equal(accounts.resolveAccount(multi, "b").enabled, false);
    assert.equal(accounts.resolveAccount(multi, "b").configured, false);
    assert.deepEqual(accounts.webhookPaths(multi), ["/wecom"]);
  });
});

// The gateway side (lib/host.js + the ChannelPlugin) against a fake Clawdbot runtime and a real
// HTTP listener: route registration, dispatch, block delivery, failures, abort.
describe("plugin entry with a fake Clawdbot runtime", () => {
  let server;
  let port;
  let api;
  let channel;
  const contexts = [];
  let behaviour = "blocks";
  const cfg = {
    gateway: {},
    channels: { wecom: { webhookPath: "/wecom", token: TOKEN, encodingAESKey: AES_KEY, dm: { policy: "open", allowFrom: ["*"] } } },
  };
  const logs = [];
  const logger = {
    info: (m) => logs.push(["info", m]),
    warn: (m) => logs.push(["warn", m]),
    error: (m) => logs.push(["error", m]),
    debug: (m) => logs.push(["debug", m]),
  };
  const routes = new Map();
  const runtime = {
    config: { loadConfig: () => cfg },
    state: { resolveStateDir: () => path.join(tmp, "state") },
    channel: {
      routing: {
        resolveAgentRoute: ({ accountId, peer }) => ({ agentId: "main", accountId, sessionKey: `agent:main:wecom:${peer.kind}:${peer.id}` }),
      },
      session: {
        resolveStorePath: () => path.join(tmp, "sessions.json"),
        readSessionUpdatedAt: () => undefined,
        recordInboundSession: async () => {},
      },
      commands: { shouldComputeCommandAuthorized: () => false },
      reply: {
        resolveEnvelopeFormatOptions: () => ({}),
        formatAgentEnvelope: ({ body }) => body,
        finalizeInboundContext: (ctx) => ctx,
        dispatchReplyWithBufferedBlockDispatcher: async ({ ctx, dispatcherOptions }) => {
          contexts.push(ctx);
          const { deliver, onError } = dispatcherOptions;
          if (behaviour === "throw") throw new Error("model provider unreachable");
          if (behaviour === "onError") {
            onError(new Error("deliver exploded"), { kind: "final" });
            return;
          }
          await deliver({ text: "Reasoning:\n_thinking hard_" }, { kind: "block" });
          await deliver({ text: "part one" }, { kind: "block" });
          await deliver({ text: "tool output" }, { kind: "tool" });
          await new Promise((r) => setTimeout(r, 50));
          await deliver({ text: "part two" }, { kind: "final" });
        },
      },
    },
  };

  before(async () => {
    api = {
      config: cfg,
      runtime,
      logger,
      registerHttpRoute: ({ path: p, auth, handler }) => {
        assert.equal(auth, "plugin");
        routes.set(p, handler);
      },
      registerHttpHandler: () => {},
      registerChannel: ({ plugin: p }) => {
        channel = p;
      },
    };
    plugin.register(api);
    server = http.createServer(async (req, res) => {
      const handler = routes.get(new URL(req.url, "http://x").pathname);
      if (!handler) {
        res.statusCode = 404;
        res.end("control ui");
        return;
      }
      await handler(req, res);
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    port = server.address().port;
    cfg.gateway.port = port;
  });
  after(() => server?.close());

  test("ids agree and the meta is complete", () => {
    assert.equal(plugin.id, "wecom");
    assert.equal(channel.id, "wecom");
    assert.equal(channel.meta.docsPath, "/channels/wecom");
    assert.deepEqual(channel.capabilities.chatTypes, ["direct", "group"]);
    assert.equal(channel.capabilities.blockStreaming, true);
    assert.ok(routes.has("/wecom"));
  });

  test("start → messages answered with final blocks only → probe → abort releases the path", async () => {
    const abort = new AbortController();
    const statuses = [];
    const running = channel.gateway.startAccount({
      cfg,
      accountId: "default",
      account: channel.config.resolveAccount(cfg, "default"),
      abortSignal: abort.signal,
      log: logger,
      setStatus: (s) => statuses.push(s),
    });
    let settled = false;
    running.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled, false, "startAccount stays pending until abort");
    assert.ok(logs.some(([, m]) => /webhook listening on \/wecom .*registerHttpRoute/.test(m)));

    const url = `http://127.0.0.1:${port}/wecom`;
    behaviour = "blocks";
    const dm = await wc.sendAndFollow({ url, token: TOKEN, aesKey: AES_KEY, user: "alice", text: "hello", intervalMs: 30 });
    assert.equal(dm.final.stream.content, "part one\n\npart two");
    const ctx = contexts.at(-1);
    assert.equal(ctx.From, "wecom:alice");
    assert.equal(ctx.To, "wecom:alice");
    assert.equal(ctx.ChatType, "direct");
    assert.equal(ctx.Provider, "wecom");

    const group = await wc.sendAndFollow({ url, token: TOKEN, aesKey: AES_KEY, user: "bob", chatId: "g1", text: "@bot hi", intervalMs: 30 });
    assert.equal(group.final.stream.finish, true);
    assert.equal(contexts.at(-1).From, "wecom:group:g1");
    assert.equal(contexts.at(-1).ChatType, "group");

    behaviour = "throw";
    const failed = await wc.sendAndFollow({ url, token: TOKEN, aesKey: AES_KEY, user: "alice", text: "again", intervalMs: 30 });
    assert.match(failed.final.stream.content, /could not answer this message \(model provider unreachable\)/);
    behaviour = "onError";
    const failed2 = await wc.sendAndFollow({ url, token: TOKEN, aesKey: AES_KEY, user: "alice", text: "third", intervalMs: 30 });
    assert.match(failed2.final.stream.content, /deliver exploded/);

    const account = channel.config.resolveAccount(cfg, "default");
    const probe = await channel.status.probeAccount({ account, cfg, timeoutMs: 3000 });
    assert.equal(probe.ok, true, JSON.stringify(probe));
    assert.equal(probe.listener.status, 200);
    const snap = channel.status.buildAccountSnapshot({ account, cfg, runtime: { running: true }, probe });
    assert.equal(snap.probe, probe);
    assert.equal(snap.counters.messages >= 4, true);

    const sent = await channel.outbound.sendText({ to: "wecom:alice", text: "x", accountId: "default", cfg });
    assert.equal(sent.ok, false);
    assert.match(sent.error, /passive-reply only/);

    abort.abort();
    await running;
    const res = await fetch(url);
    assert.equal(res.status, 503, "a stopped account's path is still ours, never the Control UI");
    const unhealthy = await channel.status.probeAccount({ account, cfg, timeoutMs: 2000 });
    assert.equal(unhealthy.ok, false);
    assert.match(unhealthy.error, /503/);
  });

  test("a bad key fails start and probe with the library's message", async () => {
    const bad = { channels: { wecom: { token: TOKEN, encodingAESKey: AES_KEY.slice(1) } } };
    const account = channel.config.resolveAccount(bad, "default");
    await assert.rejects(
      channel.gateway.startAccount({ cfg: bad, accountId: "default", account, abortSignal: new AbortController().signal, log: logger, setStatus: () => {} }),
      /encodingAESKey must be 43 characters \(got 42\)/,
    );
    const probe = await channel.status.probeAccount({ account, cfg: bad, timeoutMs: 1000 });
    assert.equal(probe.ok, false);
    assert.match(probe.error, /encodingAESKey/);
  });
});
