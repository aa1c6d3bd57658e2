// The parts both end-to-end scripts (e2e.mjs: Clawdbot, e2e-openclaw.mjs: OpenClaw) share: named
// steps with timings, the gateway CLI run with this node, config edits, child processes stopped
// by pid, polling, and the closing summary. Each script keeps what differs: installs, config
// shape, environment and the steps themselves.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/**
 * @param {{ cliName: string, entry: string, env: object, work: string, configPath: string }} options
 *   cliName is only for messages ("clawdbot", "openclaw"); entry is the CLI's JS entry point.
 */
export function createHarness({ cliName, entry, env, work, configPath }) {
  const t0 = Date.now();
  const timings = [];
  const children = new Set();
  const counts = { passed: 0, failed: 0 };

  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

  async function step(name, fn, { critical = false } = {}) {
    const start = Date.now();
    try {
      const r = await fn();
      counts.passed += 1;
      timings.push([name, Date.now() - start]);
      console.log(`ok   ${name} (${Date.now() - start} ms, at ${elapsed()})`);
      return r;
    } catch (err) {
      counts.failed += 1;
      console.log(`FAIL ${name} (${Date.now() - start} ms): ${err?.stack ?? err}`);
      if (critical) throw new Error(`stopping: "${name}" failed`);
      return undefined;
    }
  }

  /** Runs the gateway's CLI with this process's node; throws (with its output) on failure. */
  function cli(cliArgs, { timeoutMs = 120_000, allowFail = false, extraEnv = {} } = {}) {
    const r = spawnSync(process.execPath, [entry, ...cliArgs], {
      env: { ...env, ...extraEnv },
      cwd: work,
      encoding: "utf8",
      timeout: timeoutMs,
      maxBuffer: 32 << 20,
    });
    const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
    if (!allowFail && r.status !== 0) throw new Error(`${cliName} ${cliArgs.join(" ")} → ${r.status ?? r.signal}\n${out.slice(-3000)}`);
    return { status: r.status, stdout: r.stdout ?? "", out };
  }

  function jsonFrom(text) {
    const i = text.indexOf("{");
    assert.ok(i >= 0, `no JSON in: ${text.slice(0, 500)}`);
    return JSON.parse(text.slice(i));
  }

  function editConfig(fn) {
    const cfg = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
    fn(cfg);
    fs.mkdirSync(path.dirname(configPath), { recursive: true });
    fs.writeFileSync(configPath, JSON.stringify(cfg, null, 2));
  }

  function startProcess(name, cmd, cmdArgs, outFile) {
    const out = fs.openSync(outFile, "a");
    const child = spawn(cmd, cmdArgs, { env, cwd: work, stdio: ["ignore", out, out] });
    fs.closeSync(out);
    child.name = name;
    children.add(child);
    child.on("exit", () => children.delete(child));
    return child;
  }

  async function stopProcess(child, graceMs = 10_000) {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async function stopAll() {
    for (const child of children) await stopProcess(child, 3000);
  }

  async function waitFor(what, predicate, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await predicate();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Prints timings and the verdict and sets the exit code. */
  function summarize() {
    console.log(`timings: ${timings.map(([n, ms]) => `${n.split(" ")[0]}…=${ms}ms`).join(", ")}`);
    console.log(`e2e total ${elapsed()}`);
    console.log(`${counts.passed} passed, ${counts.failed} failed`);
    process.exitCode = counts.failed ? 1 : 0;
  }

  return { counts, elapsed, step, cli, jsonFrom, editConfig, startProcess, stopProcess, stopAll, waitFor, summarize };
}
