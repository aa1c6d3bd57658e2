// End-to-end: our npm tarball inside the REAL OpenClaw gateway (2026.9.x), driven by WeCom's side:
// the project's wecom-sim binary. Run through test/e2e-openclaw.sh, which prepares node 24,
// openclaw, the tarball and wecom-sim:
//   node e2e-openclaw.mjs --openclaw DIR --tgz FILE --sim PATH [--npm-cache DIR] [--keep]
// Every process (CLI, gateway) runs with support/block-network.cjs preloaded: OpenClaw's gateway
// fetches a plugin feed from the internet on start, and nothing here may leave 127.0.0.1.
// Everything listens on 127.0.0.1; every process is started and stopped by pid here.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { createHarness } from "./support/harness.mjs";
import { WecomSim } from "./support/wecom-sim.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const openclawDir = opt("--openclaw");
const tgz = opt("--tgz");
const simBin = opt("--sim", process.env.WECOM_SIM ?? "");
const npmCache = opt("--npm-cache", "");
const registryHost = new URL(opt("--registry", "https://registry.npmjs.org/")).hostname;
const keep = args.includes("--keep");
assert.ok(openclawDir && tgz && simBin, "usage: e2e-openclaw.mjs --openclaw DIR --tgz FILE --sim PATH");
const sim = new WecomSim(simBin);
const entry = path.join(openclawDir, "node_modules", "openclaw", "openclaw.mjs");

const A = { id: "default", path: "/wecom", token: "tokenA-e2e", aesKey: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt" };
const B = { id: "team2", path: "/wecom-team2", token: "tokenB-e2e", aesKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" };


function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

const home = fs.mkdtempSync(path.join(os.tmpdir(), "cwc-e2e-openclaw-"));
const work = path.join(home, "work");
fs.mkdirSync(work);
const logFile = path.join(work, "gateway.log");
const modelLog = path.join(work, "model.jsonl");
const gatewayPort = await freePort();
const gatewayToken = crypto.randomBytes(12).toString("hex");
const env = {
  PATH: process.env.PATH,
  HOME: home,
  TMPDIR: process.env.TMPDIR ?? "/tmp",
  LANG: "C.UTF-8",
  NO_COLOR: "1",
  FORCE_COLOR: "0",
  CI: "1",
  DO_NOT_TRACK: "1",
  OPENCLAW_NO_RESPAWN: "1",
  OPENCLAW_DISABLE_BONJOUR: "1",
  OPENCLAW_NO_AUTO_UPDATE: "1",
  OPENCLAW_GATEWAY_PORT: String(gatewayPort),
  OPENCLAW_GATEWAY_TOKEN: gatewayToken,
  NODE_OPTIONS: `--require ${path.join(here, "support", "block-network.cjs")}`,
  CWC_BLOCKED_NET_LOG: path.join(work, "blocked-net.log"),
  ...(npmCache ? { npm_config_cache: npmCache } : {}),
  npm_config_audit: "false",
  npm_config_fund: "false",
  npm_config_update_notifier: "false",
};
const configPath = path.join(home, ".openclaw", "openclaw.json");

const { counts, elapsed, step, cli, jsonFrom, editConfig, startProcess, stopProcess, stopAll, waitFor, summarize } =
  createHarness({ cliName: "openclaw", entry, env, work, configPath });

const gatewayOut = path.join(work, "gateway.out");
const readGatewayOut = () => (fs.existsSync(gatewayOut) ? fs.readFileSync(gatewayOut, "utf8") : "");
const url = (acct) => `http://127.0.0.1:${gatewayPort}${acct.path}`;

// WeCom's side: wecom-sim (stdout of `send --follow` is exactly the final answer).
const verifyUrl = (acct) => sim.verifyUrl({ url: url(acct), token: acct.token, aesKey: acct.aesKey });
const send = (acct, { user, text, group }) =>
  sim.send({ url: url(acct), token: acct.token, aesKey: acct.aesKey, user, text, group });

// The streamed answer must be exactly the fake model's text.
function assertAnswer(answer, n) {
  assert.equal(answer, `FAKE-MODEL says: ${n}`, `answer was: ${JSON.stringify(answer)}`);
}

function modelRequests() {
  if (!fs.existsSync(modelLog)) return [];
  return fs.readFileSync(modelLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

let gateway;
let model;
try {
  console.log(`e2e-openclaw: HOME=${home} gateway port ${gatewayPort}; WeCom peer: ${sim.bin}`);
  // The doc's quiet settings: no mDNS, no telemetry, no model catalog refresh, no update check.
  editConfig((c) => {
    c.gateway = { mode: "local", port: gatewayPort, bind: "loopback", auth: { mode: "token", token: gatewayToken } };
    c.update = { checkOnStart: false };
    c.logging = { file: logFile, level: "debug" };
    c.discovery = { mdns: { mode: "off" } };
    c.telemetry = { enabled: false };
  });

  await step("openclaw plugins install <tgz> --force --accept-capabilities", () => {
    // Its npm child installs koffi: the registry host (only) is let through the network block.
    const r = cli(["plugins", "install", tgz, "--force", "--accept-capabilities"], { timeoutMs: 180_000, extraEnv: { CWC_NET_ALLOW_HOSTS: registryHost, npm_config_prefer_offline: "true" } });
    assert.match(r.out, /Installed plugin: wecom|installed.*wecom/i, r.out.slice(-2000));
  }, { critical: true });

  model = startProcess("fake-openai", process.execPath, [path.join(here, "support", "fake-openai.mjs"), "--port-file", path.join(work, "model.port"), "--log", modelLog], path.join(work, "model.out"));
  const modelPort = await waitFor("fake model port", () => fs.existsSync(path.join(work, "model.port")) && fs.readFileSync(path.join(work, "model.port"), "utf8"), 10_000);

  editConfig((c) => {
    c.models = {
      catalogRefresh: { enabled: false },
      providers: {
        fake: {
          baseUrl: `http://127.0.0.1:${modelPort}/v1`,
          apiKey: "x",
          api: "openai-completions",
          models: [{ id: "fake-1", name: "fake-1", contextWindow: 128000, maxTokens: 4096 }],
        },
      },
    };
    c.agents = { ...(c.agents ?? {}), defaults: { ...(c.agents?.defaults ?? {}), model: { primary: "fake/fake-1" } } };
    c.channels = {
      wecom: {
        enabled: true,
        defaultAccount: "default",
        accounts: {
          default: { webhookPath: A.path, token: A.token, encodingAESKey: A.aesKey, receiveId: "", dm: { policy: "open", allowFrom: ["*"] } },
          team2: { webhookPath: B.path, token: B.token, encodingAESKey: B.aesKey, receiveId: "", dm: { policy: "pairing" } },
        },
      },
    };
  });

  // `plugins list --json` does not load plugins; inspect --runtime does (and counts the routes).
  await step("openclaw plugins inspect wecom --runtime: enabled, loaded, both routes registered", () => {
    const j = jsonFrom(cli(["plugins", "inspect", "wecom", "--runtime", "--json"]).stdout);
    assert.equal(j.plugin?.status, "loaded", JSON.stringify(j).slice(0, 2000));
    assert.equal(j.plugin?.enabled, true);
    assert.equal(j.plugin?.format, "openclaw");
    assert.deepEqual(j.plugin?.channelIds, ["wecom"]);
    assert.equal(j.httpRouteCount, 2, "one exact route per account path, fixed at register()");
  });

  await step("openclaw gateway run listens and serves both webhook paths", async () => {
    gateway = startProcess("gateway", process.execPath, [entry, "gateway", "run", "--bind", "loopback", "--port", String(gatewayPort), "--verbose"], gatewayOut);
    await waitFor(
      "both accounts listening",
      () => {
        if (gateway.exitCode !== null) throw new Error(`gateway exited ${gateway.exitCode}\n${readGatewayOut().slice(-3000)}`);
        const out = readGatewayOut();
        return out.includes(`webhook listening on ${A.path} `) && out.includes(`webhook listening on ${B.path} `);
      },
      120_000,
    );
    assert.match(readGatewayOut(), /via api\.registerHttpRoute/);
  }, { critical: true });

  await step("VerifyURL on both paths (bare plaintext)", async () => {
    await verifyUrl(A);
    await verifyUrl(B);
  });

  await step("DM (dm.policy open) answered with the fake model's text through refreshes", async () => {
    const marker = `ping-${crypto.randomUUID().slice(0, 8)}`;
    const answer = await send(A, { user: "alice", text: `hello ${marker}` });
    const req = modelRequests().find((r) => r.user.includes(marker));
    assert.ok(req, "the message reached the model");
    assertAnswer(answer, req.n);
  });

  await step("group message to wecom:group:<chatid>", async () => {
    const marker = `grp-${crypto.randomUUID().slice(0, 8)}`;
    const answer = await send(A, { user: "bob", group: "chat42", text: `@bot ${marker}` });
    const req = modelRequests().find((r) => r.user.includes(marker));
    assert.ok(req, "the group message reached the model");
    assertAnswer(answer, req.n);
  });

  await step("openclaw channels status --probe: both accounts healthy", () => {
    const j = jsonFrom(cli(["channels", "status", "--probe", "--json"]).stdout);
    const accounts = j.channelAccounts?.wecom ?? [];
    for (const id of [A.id, B.id]) {
      const a = accounts.find((x) => x.accountId === id);
      assert.ok(a, `account ${id} in ${JSON.stringify(j.channelAccounts ?? j).slice(0, 3000)}`);
      assert.equal(a.running, true);
      assert.equal(a.probe?.ok, true, JSON.stringify(a.probe));
      assert.equal(a.probe.listener?.status, 200);
    }
  });

  await step("wrong token → 401, and `openclaw logs` shows invalid signature", async () => {
    const r = await sim.sendRaw({ url: url(A), token: "not-the-token", aesKey: A.aesKey, user: "eve", text: "x", timeoutMs: 20_000 });
    assert.notEqual(r.status, 0, `wecom-sim with a wrong token must fail: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /401/, r.stderr);
    assert.match(r.stderr, /invalid signature/, r.stderr);
    await waitFor("log line", () => cli(["logs", "--plain", "--limit", "400"], { allowFail: true }).out.match(/wecom\[default\]: 401 invalid signature.*POST \/wecom/), 20_000);
  });

  await step("pairing: unknown user gets a code; openclaw pairing approve; next message reaches the model", async () => {
    const first = await send(B, { user: "dave", text: "let me in" });
    const code = /Pairing code: ([A-Z0-9]{8})/.exec(first)?.[1];
    assert.ok(code, `pairing answer: ${first}`);
    assert.equal(modelRequests().some((r) => r.user.includes("let me in")), false, "an unpaired sender never reaches the agent");
    const list = jsonFrom(cli(["pairing", "list", "wecom", "--json"]).stdout);
    const request = (list.requests ?? []).find((r) => r.code === code);
    assert.ok(request, JSON.stringify(list));
    assert.equal(request.id, "dave");
    const approved = cli(["pairing", "approve", "wecom", code]).out;
    assert.match(approved, /Approved/i);
    const marker = `paired-${crypto.randomUUID().slice(0, 8)}`;
    // The first approval also writes commands.ownerAllowFrom, which restarts the channel: the
    // account comes back with the same config and serves again.
    const answer = await send(B, { user: "dave", text: marker });
    const req = modelRequests().find((r) => r.user.includes(marker));
    assert.ok(req, "after approval the message reaches the model");
    assertAnswer(answer, req.n);
  });
} catch (err) {
  console.log(String(err?.message ?? err));
} finally {
  await stopProcess(gateway);
  await stopProcess(model, 3000);
  await stopAll();
  if (counts.failed && fs.existsSync(gatewayOut)) {
    console.log("---- gateway output (tail) ----");
    console.log(readGatewayOut().split("\n").slice(-60).join("\n"));
  }
  const blocked = path.join(work, "blocked-net.log");
  if (fs.existsSync(blocked)) {
    const lines = fs.readFileSync(blocked, "utf8").trim().split("\n");
    console.log(`network block refused ${lines.length} non-loopback connection(s), e.g. ${lines[0]}`);
  }
  if (!keep) fs.rmSync(home, { recursive: true, force: true });
  else console.log(`kept ${home}`);
  summarize();
}
