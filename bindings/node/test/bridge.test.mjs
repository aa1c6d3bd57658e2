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
const { ClawdbotPairingStore, OpenClawPairingStore } = require("../lib/store.js");
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
    assert.equal(library.abiVersionString, "1.1");
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

  test("ABI 1.1: media is downloaded through hooks.fetch, long answers continue through response_url, events reach the host", async () => {
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)]);
    const posts = [];
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        if (req.method === "GET") return res.end(wc.encryptMedia(AES_KEY, png));
        posts.push(Buffer.concat(chunks).toString("utf8"));
        res.setHeader("Content-Type", "application/json");
        res.end('{"errcode":0,"errmsg":"ok"}');
      });
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${server.address().port}`;
    const { performFetch } = require("../lib/fetch.js");
    const events = [];
    let inst = null;
    const { dispatched, logs, hooks } = collectingHooks({
      fetch: (req) => {
        setImmediate(async () => {
          const r = await performFetch(req);
          inst.fetchDone(req.id, r.outcome, r.status, r.body, r.error);
        });
        return true;
      },
      event: (e) => events.push(e),
    });
    const mediaDir = path.join(tmp, "media");
    inst = library.createInstance({ token: TOKEN, encodingAESKey: AES_KEY, dm: { policy: "open", allowFrom: ["*"] }, mediaDir }, hooks);
    try {
      const image = { msgid: "img-1", aibotid: "B", chattype: "single", from: { userid: "alice" }, response_url: `${base}/response`, msgtype: "image", image: { url: `${base}/media` } };
      post(inst, image);
      assert.equal(dispatched.length, 0, "dispatched only once the image is in");
      for (let i = 0; i < 100 && dispatched.length === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
      assert.equal(dispatched.length, 1, JSON.stringify(logs));
      const [media] = dispatched[0].media;
      assert.equal(media.mime, "image/png");
      assert.deepEqual(fs.readFileSync(media.path), png);
      const { mediaFields } = require("../lib/host.js");
      assert.deepEqual(mediaFields(dispatched[0].media).MediaTypes, ["image/png"]);

      // The agent answers with an image and 25 000 characters: msg_item + response_url.
      assert.deepEqual(inst.attachImage(dispatched[0].streamId, png), { ok: true });
      assert.equal(inst.attachImage(dispatched[0].streamId, Buffer.from("GIF89a")).ok, false);
      inst.finish(dispatched[0].streamId, native.FinishKind.DONE, "x".repeat(25_000));
      for (let i = 0; i < 100 && posts.length === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
      assert.equal(posts.length, 1);
      assert.equal(JSON.parse(posts[0]).msgtype, "markdown");
      for (let i = 0; i < 100 && !logs.some((l) => l.line.includes("response_url delivered")); i += 1) await new Promise((r) => setTimeout(r, 20));
      assert.ok(logs.some((l) => l.line.includes("response_url delivered")), JSON.stringify(logs));
      const final = wc.openReply({ token: TOKEN, aesKey: AES_KEY, body: post(inst, wc.refreshMessage({ user: "alice", streamId: dispatched[0].streamId })).body });
      assert.equal(final.stream.msg_item.length, 1);
      assert.ok(final.stream.content.endsWith("(continued below)"));

      post(inst, { msgid: "ev-1", aibotid: "B", chattype: "single", from: { userid: "alice" }, msgtype: "event", event: { eventtype: "feedback_event", feedback_event: { id: "F1", type: 1 } } });
      assert.equal(events.length, 1);
      assert.equal(events[0].eventType, "feedback_event");
      assert.deepEqual(events[0].event.feedback_event, { id: "F1", type: 1 });
    } finally {
      inst.destroy();
      server.close();
    }
  });

  test("performFetch enforces the size cap and the time limit", async () => {
    const { performFetch } = require("../lib/fetch.js");
    const server = http.createServer((req, res) => {
      if (req.url === "/big") return res.end(Buffer.alloc(5000));
      setTimeout(() => res.end("late"), 2000);
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${server.address().port}`;
    try {
      const big = await performFetch({ method: "GET", url: `${base}/big`, maxResponseBytes: 1000, timeoutMs: 5000 });
      assert.equal(big.outcome, native.FetchOutcome.TOO_LARGE);
      const slow = await performFetch({ method: "GET", url: `${base}/slow`, maxResponseBytes: 1000, timeoutMs: 200 });
      assert.equal(slow.outcome, native.FetchOutcome.TIMEOUT);
      const closed = http.createServer();
      await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const closedPort = closed.address().port;
      await new Promise((resolve) => closed.close(resolve));
      const refused = await performFetch({ method: "GET", url: `http://127.0.0.1:${closedPort}/x`, maxResponseBytes: 1000, timeoutMs: 2000 });
      assert.equal(refused.outcome, native.FetchOutcome.FAILED);
      assert.match(refused.error, /ECONNREFUSED/);
    } finally {
      server.closeAllConnections?.();
      server.close();
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

// node:sqlite exists from node 22.5 on; OpenClaw itself needs node ≥ 24, and the OpenClaw
// end-to-end test runs on node 24. On an older node these unit checks are skipped, not failed.
const hasSqlite = (() => {
  try {
    require("node:sqlite");
    return true;
  } catch {
    return false;
  }
})();

describe("pairing store in OpenClaw's SQLite tables", { skip: hasSqlite ? false : `node ${process.version} has no node:sqlite (OpenClaw needs node >= 24)` }, () => {
  // The two tables exactly as OpenClaw 2026.9.6 creates them in <stateDir>/state/openclaw.sqlite.
  const SCHEMA = `
    CREATE TABLE channel_pairing_requests (channel_key TEXT NOT NULL, account_id TEXT NOT NULL,
      request_id TEXT NOT NULL, code TEXT NOT NULL, created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL,
      meta_json TEXT, PRIMARY KEY (channel_key, account_id, request_id)) STRICT;
    CREATE TABLE channel_pairing_allow_entries (channel_key TEXT NOT NULL, account_id TEXT NOT NULL,
      entry TEXT NOT NULL, sort_order INTEGER NOT NULL, updated_at INTEGER NOT NULL,
      PRIMARY KEY (channel_key, account_id, entry)) STRICT;`;

  test("requests and allow entries per account; a CLI approval is not undone", () => {
    const { DatabaseSync } = require("node:sqlite");
    const file = path.join(tmp, "openclaw-state", "openclaw.sqlite");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const cli = new DatabaseSync(file);
    cli.exec(SCHEMA);
    const store = new OpenClawPairingStore({ databasePath: file });
    const now = Date.now();
    assert.equal(store.put("wecom:team2:pairing", "requests", JSON.stringify([{ code: "ABCD2345", userId: "dave", createdAt: now, lastSeenAt: now }])), true);
    const row = cli.prepare("SELECT * FROM channel_pairing_requests").get();
    assert.equal(row.channel_key, "wecom");
    assert.equal(row.account_id, "team2");
    assert.equal(row.request_id, "dave");
    assert.equal(row.code, "ABCD2345");
    assert.equal(row.created_at, new Date(now).toISOString());
    assert.deepEqual(JSON.parse(row.meta_json), { accountId: "team2" });
    assert.equal(store.get("wecom:default:pairing", "requests"), "[]", "other accounts see nothing");
    // `openclaw pairing approve` (another process): the request goes, the allow entry comes.
    cli.exec("DELETE FROM channel_pairing_requests");
    cli.prepare("INSERT INTO channel_pairing_allow_entries VALUES ('wecom', 'team2', 'dave', 0, ?)").run(now);
    assert.equal(store.get("wecom:team2:allowFrom", "list"), '["dave"]');
    assert.equal(store.get("wecom:default:allowFrom", "list"), "[]");
    // A stale write of the old request list must not bring dave back as pending.
    store.put("wecom:team2:pairing", "requests", JSON.stringify([{ code: "ABCD2345", userId: "dave", createdAt: now }]));
    assert.equal(cli.prepare("SELECT COUNT(*) AS n FROM channel_pairing_requests").get().n, 0);
    store.close();
    cli.close();
  });

  test("a database without OpenClaw's tables is a clear error", () => {
    const file = path.join(tmp, "not-openclaw.sqlite");
    const store = new OpenClawPairingStore({ databasePath: file });
    assert.throws(() => store.get("wecom:default:allowFrom", "list"), /has no table channel_pairing_requests/);
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
