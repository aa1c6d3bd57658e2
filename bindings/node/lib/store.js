"use strict";
// The host key/value store of the C ABI (callback_store_get/put), mapped onto Clawdbot's own
// pairing store so that `clawdbot pairing list wecom` and `clawdbot pairing approve wecom <CODE>`
// (which read and write these files directly, in another process) see and approve the requests
// the core creates.
//
// Clawdbot 2026.1.x keeps, per channel, in <stateDir>/credentials/ (CLAWDBOT_OAUTH_DIR overrides):
//   wecom-pairing.json   {"version":1,"requests":[{"id","code","createdAt","lastSeenAt","meta"}]}
//   wecom-allowFrom.json {"version":1,"allowFrom":["<id>", ...]}
// (ISO timestamps; written as tmp file + rename; guarded by proper-lockfile, i.e. a directory
// "<realpath>.lock" created with mkdir and considered stale after 30 s).
//
// The core's namespaces are per account:
//   wecom:<account>:pairing   key "requests" → [{"code","userId","createdAt","lastSeenAt"}] (ms)
//   wecom:<account>:allowFrom key "list"     → ["<userid>", ...]
// Clawdbot's files are per channel, so account ids are folded into the entry id: the account
// "default" uses the bare WeCom userid (what every single-account setup gets), any other account
// "<account>:<userid>". An entry therefore belongs to exactly one account.
//
// The ABI callbacks are synchronous, so this file uses synchronous fs calls. They touch two small
// files, and a contended lock (a CLI approving at that very moment) waits at most ~2 s.

const fs = require("node:fs");
const path = require("node:path");
const crypto = require("node:crypto");

const DEFAULT_ACCOUNT_ID = "default";
const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 2_000;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms) {
  Atomics.wait(sleepCell, 0, 0, ms);
}

function entryIdFor(accountId, userId) {
  return accountId === DEFAULT_ACCOUNT_ID ? userId : `${accountId}:${userId}`;
}

/** The user id if `entryId` belongs to `accountId`, else null. */
function userIdOf(accountId, entryId) {
  const id = String(entryId ?? "").trim().replace(/^wecom:/i, "");
  if (!id || id === "*") return null;
  if (accountId === DEFAULT_ACCOUNT_ID) return id.includes(":") ? null : id;
  const prefix = `${accountId}:`;
  return id.startsWith(prefix) && id.length > prefix.length ? id.slice(prefix.length) : null;
}

function parseNamespace(ns) {
  const m = /^wecom:(.+):(pairing|allowFrom)$/.exec(ns);
  return m ? { accountId: m[1], kind: m[2] } : null;
}

function toIso(ms) {
  const n = Number(ms);
  return new Date(Number.isFinite(n) && n > 0 ? n : Date.now()).toISOString();
}

function toMs(iso) {
  const t = Date.parse(String(iso ?? ""));
  return Number.isFinite(t) ? t : 0;
}

class ClawdbotPairingStore {
  /**
   * @param {{ credentialsDir: string, channel?: string, log?: (level: string, line: string) => void }} options
   */
  constructor({ credentialsDir, channel = "wecom", log }) {
    this.dir = credentialsDir;
    this.channel = channel;
    this.log = log ?? (() => {});
    this.memory = new Map(); // namespaces the core may add later and Clawdbot has no file for
  }

  get pairingPath() {
    return path.join(this.dir, `${this.channel}-pairing.json`);
  }

  get allowFromPath() {
    return path.join(this.dir, `${this.channel}-allowFrom.json`);
  }

  /** callback_store_get: the value, or undefined when absent. */
  get(ns, key) {
    const parsed = parseNamespace(ns);
    if (parsed?.kind === "allowFrom" && key === "list") {
      const { allowFrom } = this.#readAllowFrom();
      const users = allowFrom.map((e) => userIdOf(parsed.accountId, e)).filter(Boolean);
      return JSON.stringify([...new Set(users)]);
    }
    if (parsed?.kind === "pairing" && key === "requests") {
      const { requests } = this.#readPairing();
      const mine = [];
      for (const r of requests) {
        const userId = userIdOf(parsed.accountId, r?.id);
        if (!userId || typeof r.code !== "string") continue;
        const createdAt = toMs(r.createdAt);
        mine.push({ code: r.code, userId, createdAt, lastSeenAt: toMs(r.lastSeenAt) || createdAt });
      }
      return JSON.stringify(mine);
    }
    return this.memory.get(`${ns}\u001f${key}`);
  }

  /** callback_store_put: true when stored. */
  put(ns, key, value) {
    const parsed = parseNamespace(ns);
    if (parsed?.kind === "allowFrom" && key === "list") {
      const users = JSON.parse(value);
      if (!Array.isArray(users)) throw new Error("allow-from value is not a JSON array");
      return this.#locked(this.allowFromPath, { version: 1, allowFrom: [] }, () => {
        const { allowFrom } = this.#readAllowFrom();
        const others = allowFrom.filter((e) => userIdOf(parsed.accountId, e) === null);
        const mine = users.map((u) => entryIdFor(parsed.accountId, String(u)));
        this.#writeJson(this.allowFromPath, { version: 1, allowFrom: [...new Set([...others, ...mine])] });
      });
    }
    if (parsed?.kind === "pairing" && key === "requests") {
      const wanted = JSON.parse(value);
      if (!Array.isArray(wanted)) throw new Error("pairing value is not a JSON array");
      return this.#locked(this.pairingPath, { version: 1, requests: [] }, () => {
        const { requests } = this.#readPairing();
        // A sender the owner approved meanwhile (CLI, other process) must not come back as pending.
        const approved = new Set(this.#readAllowFrom().allowFrom.map(String));
        const previous = new Map(requests.map((r) => [r?.id, r]));
        const others = requests.filter((r) => userIdOf(parsed.accountId, r?.id) === null);
        const mine = wanted
          .map((r) => {
            const id = entryIdFor(parsed.accountId, String(r.userId));
            const meta = { ...(previous.get(id)?.meta ?? {}), accountId: parsed.accountId };
            return { id, code: String(r.code), createdAt: toIso(r.createdAt), lastSeenAt: toIso(r.lastSeenAt ?? r.createdAt), meta };
          })
          .filter((r) => !approved.has(r.id));
        this.#writeJson(this.pairingPath, { version: 1, requests: [...others, ...mine] });
      });
    }
    this.memory.set(`${ns}\u001f${key}`, value);
    return true;
  }

  #readJson(file, fallback) {
    try {
      const parsed = JSON.parse(fs.readFileSync(file, "utf8"));
      return parsed && typeof parsed === "object" ? parsed : fallback;
    } catch {
      return fallback;
    }
  }

  #readAllowFrom() {
    const v = this.#readJson(this.allowFromPath, {});
    return { allowFrom: Array.isArray(v.allowFrom) ? v.allowFrom.map(String) : [] };
  }

  #readPairing() {
    const v = this.#readJson(this.pairingPath, {});
    return { requests: Array.isArray(v.requests) ? v.requests.filter((r) => r && typeof r === "object") : [] };
  }

  // Same shape as Clawdbot's writeJsonFile: pretty JSON + newline, 0600, tmp file + rename.
  #writeJson(file, value) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = path.join(path.dirname(file), `${path.basename(file)}.${crypto.randomUUID()}.tmp`);
    fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { encoding: "utf8", mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  // proper-lockfile's convention: mkdir "<realpath>.lock"; a lock older than 30 s is stale.
  #locked(file, fallback, fn) {
    if (!fs.existsSync(file)) this.#writeJson(file, fallback);
    const lockDir = `${fs.realpathSync(file)}.lock`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        fs.mkdirSync(lockDir);
        break;
      } catch (err) {
        if (err.code !== "EEXIST") throw err;
        let age = 0;
        try {
          age = Date.now() - fs.statSync(lockDir).mtimeMs;
        } catch {
          continue; // released between mkdir and stat
        }
        if (age > LOCK_STALE_MS) {
          fs.rmSync(lockDir, { recursive: true, force: true });
          continue;
        }
        if (Date.now() > deadline) {
          this.log("warn", `pairing store ${path.basename(file)} is locked by another process; not saved`);
          return false;
        }
        sleepSync(25);
      }
    }
    try {
      fn();
      return true;
    } finally {
      fs.rmSync(lockDir, { recursive: true, force: true });
    }
  }
}

/** Clawdbot's credentials directory (resolveOAuthDir): $CLAWDBOT_OAUTH_DIR or <stateDir>/credentials. */
function resolveCredentialsDir(runtime, env = process.env) {
  const override = env.CLAWDBOT_OAUTH_DIR?.trim();
  if (override) return path.resolve(override.replace(/^~(?=$|[\\/])/, require("node:os").homedir()));
  let stateDir = null;
  try {
    stateDir = runtime?.state?.resolveStateDir?.();
  } catch {
    stateDir = null;
  }
  if (!stateDir) {
    const envDir = env.CLAWDBOT_STATE_DIR?.trim();
    stateDir = envDir ? path.resolve(envDir) : path.join(require("node:os").homedir(), ".clawdbot");
  }
  return path.join(stateDir, "credentials");
}

// ------------------------------------------------------------------------------------- OpenClaw
//
// OpenClaw (2026.9.x) keeps pairing state per channel AND per account in its SQLite state database
// <stateDir>/state/openclaw.sqlite ($OPENCLAW_STATE_DIR, default ~/.openclaw):
//   channel_pairing_requests      (channel_key, account_id, request_id, code, created_at, last_seen_at, meta_json)
//   channel_pairing_allow_entries (channel_key, account_id, entry, sort_order, updated_at)
// `openclaw pairing list|approve` read and write those rows in another process. Its runtime API
// (upsertPairingRequest) generates its own code, but the library has already shown the user its
// code, and the ABI's store callbacks are synchronous: so the rows are read and written here
// directly with node:sqlite (synchronous, WAL-safe, busy timeout 2 s), in the same shape as
// OpenClaw's own writer: bare userid as request id and allow entry, ISO dates, meta {accountId}.
// Accounts need no folding into ids (unlike Clawdbot's per-channel files).

const OPENCLAW_BUSY_TIMEOUT_MS = 2_000;

class OpenClawPairingStore {
  /** @param {{ databasePath: string, channel?: string, log?: (level: string, line: string) => void }} options */
  constructor({ databasePath, channel = "wecom", log }) {
    this.databasePath = databasePath;
    this.channel = channel;
    this.log = log ?? (() => {});
    this.memory = new Map();
    this.db = null;
  }

  #open() {
    if (this.db) return this.db;
    const { DatabaseSync } = require("node:sqlite");
    fs.mkdirSync(path.dirname(this.databasePath), { recursive: true, mode: 0o700 });
    const db = new DatabaseSync(this.databasePath);
    db.exec(`PRAGMA busy_timeout = ${OPENCLAW_BUSY_TIMEOUT_MS}`);
    const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((r) => r.name));
    for (const t of ["channel_pairing_requests", "channel_pairing_allow_entries"]) {
      if (!tables.has(t)) {
        db.close();
        throw new Error(`${this.databasePath} has no table ${t} (not an OpenClaw 2026.9 state database?)`);
      }
    }
    this.db = db;
    return db;
  }

  get(ns, key) {
    const parsed = parseNamespace(ns);
    if (parsed?.kind === "allowFrom" && key === "list") {
      const rows = this.#open()
        .prepare("SELECT entry FROM channel_pairing_allow_entries WHERE channel_key = ? AND account_id = ? ORDER BY sort_order, entry")
        .all(this.channel, parsed.accountId);
      return JSON.stringify([...new Set(rows.map((r) => String(r.entry).replace(/^wecom:/i, "")))]);
    }
    if (parsed?.kind === "pairing" && key === "requests") {
      const rows = this.#open()
        .prepare("SELECT request_id, code, created_at, last_seen_at FROM channel_pairing_requests WHERE channel_key = ? AND account_id = ? ORDER BY created_at")
        .all(this.channel, parsed.accountId);
      return JSON.stringify(
        rows.map((r) => {
          const createdAt = toMs(r.created_at);
          return { code: String(r.code), userId: String(r.request_id), createdAt, lastSeenAt: toMs(r.last_seen_at) || createdAt };
        }),
      );
    }
    return this.memory.get(`${ns}\u001f${key}`);
  }

  put(ns, key, value) {
    const parsed = parseNamespace(ns);
    if (parsed?.kind === "allowFrom" && key === "list") {
      const users = JSON.parse(value);
      if (!Array.isArray(users)) throw new Error("allow-from value is not a JSON array");
      return this.#transaction((db) => {
        db.prepare("DELETE FROM channel_pairing_allow_entries WHERE channel_key = ? AND account_id = ?").run(this.channel, parsed.accountId);
        const insert = db.prepare("INSERT INTO channel_pairing_allow_entries (channel_key, account_id, entry, sort_order, updated_at) VALUES (?, ?, ?, ?, ?)");
        [...new Set(users.map(String))].forEach((u, i) => insert.run(this.channel, parsed.accountId, u, i, Date.now()));
      });
    }
    if (parsed?.kind === "pairing" && key === "requests") {
      const wanted = JSON.parse(value);
      if (!Array.isArray(wanted)) throw new Error("pairing value is not a JSON array");
      return this.#transaction((db) => {
        // A sender the owner approved meanwhile (CLI, other process) must not come back as pending.
        const approved = new Set(
          db.prepare("SELECT entry FROM channel_pairing_allow_entries WHERE channel_key = ? AND account_id = ?").all(this.channel, parsed.accountId).map((r) => String(r.entry)),
        );
        db.prepare("DELETE FROM channel_pairing_requests WHERE channel_key = ? AND account_id = ?").run(this.channel, parsed.accountId);
        const insert = db.prepare(
          "INSERT OR REPLACE INTO channel_pairing_requests (channel_key, account_id, request_id, code, created_at, last_seen_at, meta_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        for (const r of wanted) {
          const id = String(r.userId);
          if (approved.has(id)) continue;
          insert.run(this.channel, parsed.accountId, id, String(r.code), toIso(r.createdAt), toIso(r.lastSeenAt ?? r.createdAt), JSON.stringify({ accountId: parsed.accountId }));
        }
      });
    }
    this.memory.set(`${ns}\u001f${key}`, value);
    return true;
  }

  #transaction(fn) {
    const db = this.#open();
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (err) {
      this.log("warn", `pairing store ${this.databasePath} is busy (${err.message}); not saved`);
      return false;
    }
    try {
      fn(db);
      db.exec("COMMIT");
      return true;
    } catch (err) {
      try {
        db.exec("ROLLBACK");
      } catch {
        /* already rolled back */
      }
      throw err;
    }
  }

  close() {
    this.db?.close();
    this.db = null;
  }
}

/** OpenClaw's state database: <stateDir>/state/openclaw.sqlite. */
function resolveOpenClawDatabasePath(runtime, env = process.env) {
  let stateDir = null;
  try {
    stateDir = runtime?.state?.resolveStateDir?.();
  } catch {
    stateDir = null;
  }
  if (!stateDir) {
    const envDir = env.OPENCLAW_STATE_DIR?.trim();
    stateDir = envDir ? path.resolve(envDir) : path.join(require("node:os").homedir(), ".openclaw");
  }
  return path.join(stateDir, "state", "openclaw.sqlite");
}

module.exports = {
  ClawdbotPairingStore,
  OpenClawPairingStore,
  resolveCredentialsDir,
  resolveOpenClawDatabasePath,
  entryIdFor,
  userIdOf,
  DEFAULT_ACCOUNT_ID,
};
