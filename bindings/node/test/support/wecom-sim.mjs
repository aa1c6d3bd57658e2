// WeCom's side of the end-to-end tests: the project's real simulator binary (build/<flavour>/
// simulator/wecom-sim), driven through its CLI. Shared by e2e.mjs (clawdbot) and e2e-openclaw.mjs.
//   wecom-sim verify-url … → prints the decrypted echo, exit 0
//   wecom-sim send … --follow → prints exactly the final streamed answer + "\n", exit 0;
//   any protocol/network failure → non-zero exit, the reason on stderr.
import { spawn } from "node:child_process";
import fs from "node:fs";

export class WecomSim {
  /** @param {string} bin path of the wecom-sim executable */
  constructor(bin) {
    if (!bin || !fs.existsSync(bin)) {
      throw new Error(`wecom-sim not found at ${JSON.stringify(bin)} (build the wecom-sim target, or set WECOM_SIM)`);
    }
    this.bin = bin;
  }

  /** Runs wecom-sim; resolves {status, stdout, stderr}; kills it after timeoutMs. */
  run(args, timeoutMs = 60_000) {
    return new Promise((resolve) => {
      const child = spawn(this.bin, args, { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("exit", (status, signal) => {
        clearTimeout(timer);
        resolve({ status: status ?? signal, stdout, stderr });
      });
    });
  }

  /** VerifyURL against url; returns the echo the server answered. Throws on failure. */
  async verifyUrl({ url, token, aesKey }) {
    const r = await this.run(["verify-url", "--url", url, "--token", token, "--aes-key", aesKey], 20_000);
    if (r.status !== 0) throw new Error(`wecom-sim verify-url ${url} → ${r.status}: ${r.stdout}${r.stderr}`);
    return r.stdout.trim();
  }

  /** A text message followed through its stream refreshes; returns the final answer. Throws on failure. */
  async send({ url, token, aesKey, user, text, group, intervalMs = 300, timeoutMs = 60_000 }) {
    const r = await this.sendRaw({ url, token, aesKey, user, text, group, intervalMs, timeoutMs });
    if (r.status !== 0) throw new Error(`wecom-sim send → ${r.status}: ${r.stdout}${r.stderr}`);
    return r.stdout.replace(/\n$/, "");
  }

  /** Same as send() but returns {status, stdout, stderr} instead of throwing (for expected failures). */
  sendRaw({ url, token, aesKey, user, text, group, intervalMs = 300, timeoutMs = 60_000 }) {
    const args = ["send", "--url", url, "--token", token, "--aes-key", aesKey, "--user", user, "--text", text, "--follow", "--interval-ms", String(intervalMs)];
    if (group) args.push("--group", group);
    return this.run(args, timeoutMs);
  }
}
