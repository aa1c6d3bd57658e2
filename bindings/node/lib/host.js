"use strict";
// The gateway side of the bridge: owns the library instances, serves the webhook paths, turns
// inbound messages into agent runs through the Clawdbot runtime, and feeds the answers back into
// the library's stream table. Every WeCom decision (signature, AES, envelopes, policy, pairing,
// dedupe, streams) is made by libclawdbot_wecom.so; this file only moves data.

const http = require("node:http");
const https = require("node:https");

const fs = require("node:fs");

const { loadLibrary, LogLevel, PushMode, FinishKind, Status } = require("./native.js");
const { performFetch } = require("./fetch.js");
const { ClawdbotPairingStore, OpenClawPairingStore, resolveCredentialsDir, resolveOpenClawDatabasePath } = require("./store.js");
const { normalizeWebhookPath, resolveAccount } = require("./accounts.js");

// Bodies are read up to this size; the library applies the account's own maxBodyBytes (≤ 16 MiB).
const HARD_BODY_LIMIT = 16 * 1024 * 1024 + 1;
// Keep an instance whose accounts all stopped alive this long: an account restarted with the same
// config (channel restart, reload) keeps its streams, so WeCom's refreshes still find them.
const RETIRE_GRACE_MS = 60_000;
const REASONING_PREFIX = "Reasoning:\n";

function levelName(level) {
  if (level >= LogLevel.ERROR) return "error";
  if (level >= LogLevel.WARN) return "warn";
  if (level >= LogLevel.INFO) return "info";
  return "debug";
}

function emit(logger, level, line) {
  if (!logger) return false;
  const fn = logger[level] ?? (level === "debug" ? null : logger.info);
  if (typeof fn !== "function") return false;
  fn.call(logger, line);
  return true;
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let total = 0;
    let done = false;
    req.on("data", (chunk) => {
      if (done) return;
      total += chunk.length;
      if (total > limit) {
        done = true;
        resolve({ tooLarge: true, body: Buffer.alloc(0) });
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!done) {
        done = true;
        resolve({ tooLarge: false, body: Buffer.concat(chunks) });
      }
    });
    req.on("error", (err) => {
      if (!done) {
        done = true;
        reject(err);
      }
    });
  });
}

function sendText(res, status, text) {
  const body = Buffer.from(`${text}`, "utf8");
  res.statusCode = status;
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.setHeader("Content-Length", body.length);
  res.end(body);
}

function payloadMedia(payload) {
  return Array.isArray(payload?.mediaUrls) && payload.mediaUrls.length ? payload.mediaUrls : payload?.mediaUrl ? [payload.mediaUrl] : [];
}

/** Clawdbot's inbound media fields from the library's downloaded files. */
function mediaFields(media) {
  const files = (Array.isArray(media) ? media : []).filter((m) => m && typeof m.path === "string");
  if (!files.length) return {};
  const paths = files.map((m) => m.path);
  const types = files.map((m) => m.mime || "application/octet-stream");
  return { MediaPath: paths[0], MediaType: types[0], MediaUrl: paths[0], MediaPaths: paths, MediaTypes: types, MediaUrls: paths };
}

const MAX_REPLY_IMAGE_BYTES = 10 * 1024 * 1024;

/** A local file (absolute path or file:// url) attached as a msg_item image: { ok } or { ok: false, error }. */
function attachLocalImage(inst, streamId, media) {
  let file = String(media);
  if (file.startsWith("file://")) {
    try {
      file = new URL(file).pathname;
    } catch {
      return { ok: false };
    }
  }
  if (!file.startsWith("/")) return { ok: false }; // a remote url: a link
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) return { ok: false, error: "not a file" };
    if (stat.size > MAX_REPLY_IMAGE_BYTES) return { ok: false, error: "larger than WeCom's 10 MB image limit" };
    return inst.attachImage(streamId, fs.readFileSync(file));
  } catch (err) {
    return { ok: false, error: err.message };
  }
}

function payloadText(payload) {
  const parts = [];
  if (typeof payload?.text === "string" && payload.text.trim()) parts.push(payload.text);
  const media = Array.isArray(payload?.mediaUrls) && payload.mediaUrls.length ? payload.mediaUrls : payload?.mediaUrl ? [payload.mediaUrl] : [];
  for (const url of media) parts.push(String(url));
  return parts.join("\n");
}

function readableFailure(err) {
  const raw = String(err?.message ?? err ?? "unknown error").split("\n")[0].slice(0, 300);
  return `Sorry, the assistant could not answer this message (${raw}). Please try again later.`;
}

class WecomHost {
  /** @param {{ api: any, libraryOptions?: object }} options */
  constructor({ api, libraryOptions }) {
    this.api = api;
    this.runtime = api.runtime;
    this.logger = api.logger;
    this.libraryOptions = libraryOptions ?? {};
    this.library = null;
    this.loadError = null;
    this.entries = new Set(); // live instances: { key, instance, accounts: Set, inflight, timer, retireTimer }
    this.active = new Map(); // webhook path → { entry, accountId, path, ctx }
    this.accountLogs = new Map(); // accountId → ctx.log of the running account
    this.httpMode = "none";
    this.routedPaths = new Set();
    this.store = null;
    this.catchAll = false;
    this.probing = 0;
    // OpenClaw (2026.9.x) vs Clawdbot (2026.1.x), by feature: OpenClaw's runtime has
    // config.current() and no config.loadConfig(), and dropped api.registerHttpHandler.
    this.openclaw = typeof api.runtime?.config?.current === "function" && typeof api.runtime?.config?.loadConfig !== "function";
    // OpenClaw refuses agent work started after the route handler returned ("Gateway is draining…")
    // unless it is admitted as detached webhook work: set by index.js from
    // openclaw/plugin-sdk/webhook-request-guards; null on Clawdbot (plain call).
    this.runDetached = null;
  }

  /** The host's config snapshot: OpenClaw's config.current(), Clawdbot's config.loadConfig(). */
  currentConfig() {
    const c = this.runtime?.config;
    if (typeof c?.current === "function") return c.current();
    if (typeof c?.loadConfig === "function") return c.loadConfig();
    return this.api.config;
  }

  // --------------------------------------------------------------------------- library + logs

  ensureLibrary() {
    if (this.library) return this.library;
    if (this.loadError) throw this.loadError;
    try {
      this.library = loadLibrary(this.libraryOptions);
      this.log("info", "", `loaded ${this.library.libraryPath} (libclawdbot_wecom ${this.library.pluginVersion}, ABI ${this.library.abiVersionString})`);
      return this.library;
    } catch (err) {
      this.loadError = err;
      // The one clear error line; status shows the same text as the account's lastError.
      emit(this.logger, "error", err.message);
      throw err;
    }
  }

  log(level, accountId, line) {
    // The self-test and the listener request of a probe (the gateway probes every minute) are not news.
    if (this.probing > 0 && level === "info" && line.startsWith("VerifyURL succeeded")) level = "debug";
    const text = accountId ? `wecom[${accountId}]: ${line}` : `wecom: ${line}`;
    const accountLog = accountId ? this.accountLogs.get(accountId) : null;
    if (!emit(accountLog, level, text)) emit(this.logger, level, text);
  }

  getStore() {
    if (!this.store && this.openclaw) {
      this.store = new OpenClawPairingStore({
        databasePath: resolveOpenClawDatabasePath(this.runtime),
        log: (level, line) => this.log(level, "", line),
      });
    }
    if (!this.store) {
      this.store = new ClawdbotPairingStore({
        credentialsDir: resolveCredentialsDir(this.runtime),
        log: (level, line) => this.log(level, "", line),
      });
    }
    return this.store;
  }

  // --------------------------------------------------------------------------- instances

  configKey(cfg) {
    return JSON.stringify(cfg?.channels?.wecom ?? {});
  }

  findEntry(cfg) {
    const key = this.configKey(cfg);
    for (const entry of this.entries) if (entry.key === key && entry.instance.alive) return entry;
    return null;
  }

  hooksFor(entryRef) {
    return {
      log: (level, accountId, line) => this.log(levelName(level), accountId, line),
      dispatch: (message) => {
        const entry = entryRef.current;
        if (!entry) return false;
        entry.inflight += 1;
        // Called from inside on_http_request: queue, return at once, answer the request.
        const run = () =>
          new Promise((resolve) => setImmediate(resolve))
            .then(() => this.runAgent(entry, message))
            .catch((err) => this.log("error", message.accountId, `dispatch failed: ${err?.stack ?? err}`))
            .finally(() => {
              entry.inflight -= 1;
              this.maybeRetire(entry);
            });
        if (this.runDetached) {
          // Still inside the route handler's call (synchronous ABI callback): OpenClaw admits the
          // work now, and it may outlive the HTTP reply.
          try {
            Promise.resolve(this.runDetached(run)).catch((err) =>
              this.log("error", message.accountId, `detached agent run refused: ${err?.stack ?? err}`),
            );
          } catch (err) {
            this.log("warn", message.accountId, `runDetachedWebhookWork failed (${err.message}); running plainly`);
            run();
          }
        } else {
          run();
        }
        return true;
      },
      // ABI 1.1: media downloads and response_url POSTs. Started here, answered later (never
      // from inside this callback); the instance is kept alive until the answer is in.
      fetch: (req) => {
        const entry = entryRef.current;
        if (!entry) return false;
        entry.inflight += 1;
        setImmediate(async () => {
          try {
            const result = await performFetch(req);
            if (entry.instance.alive) {
              entry.instance.fetchDone(req.id, result.outcome, result.status, result.body, result.error);
            }
          } catch (err) {
            this.log("error", req.accountId, `fetch completion failed: ${err?.stack ?? err}`);
          } finally {
            entry.inflight -= 1;
            this.maybeRetire(entry);
          }
        });
        return true;
      },
      // The library logs each event at info; its payload is user content, so only at debug here.
      event: (e) => {
        this.log("debug", e.accountId, `event ${e.eventType} from ${e.senderId}: ${JSON.stringify(e.event)}`);
      },
      storeGet: (ns, key) => {
        try {
          return this.getStore().get(ns, key);
        } catch (err) {
          this.log("error", "", `pairing store read failed (${ns}): ${err.message}`);
          return undefined;
        }
      },
      storePut: (ns, key, value) => {
        try {
          return this.getStore().put(ns, key, value);
        } catch (err) {
          this.log("error", "", `pairing store write failed (${ns}): ${err.message}`);
          return false;
        }
      },
    };
  }

  /** The live instance for this config, created on first use. Throws the library's config error. */
  acquire(cfg) {
    const existing = this.findEntry(cfg);
    if (existing) {
      clearTimeout(existing.retireTimer);
      existing.retireTimer = null;
      return existing;
    }
    const library = this.ensureLibrary();
    const ref = { current: null };
    const instance = library.createInstance(this.configKey(cfg), this.hooksFor(ref));
    const entry = { key: this.configKey(cfg), instance, accounts: new Set(), inflight: 0, timer: null, retireTimer: null };
    ref.current = entry;
    // on_tick: expiry and the "stream refresh not received" warning. Never keeps node alive.
    entry.timer = setInterval(() => {
      try {
        entry.instance.tick();
      } catch (err) {
        this.log("error", "", `tick failed: ${err.message}`);
      }
    }, 1000);
    entry.timer.unref?.();
    this.entries.add(entry);
    return entry;
  }

  maybeRetire(entry) {
    if (entry.accounts.size > 0 || entry.inflight > 0 || entry.retireTimer || !entry.instance.alive) return;
    entry.retireTimer = setTimeout(() => {
      entry.retireTimer = null;
      if (entry.accounts.size > 0 || entry.inflight > 0) return;
      clearInterval(entry.timer);
      this.entries.delete(entry);
      entry.instance.destroy();
    }, RETIRE_GRACE_MS);
    entry.retireTimer.unref?.();
  }

  // --------------------------------------------------------------------------- accounts

  /** gateway.startAccount: serve the account's path until ctx.abortSignal fires. */
  async startAccount(ctx) {
    const accountId = ctx.accountId ?? ctx.account?.accountId;
    if (ctx.log) this.accountLogs.set(accountId, ctx.log);
    let entry;
    try {
      entry = this.acquire(ctx.cfg);
    } catch (err) {
      // WecomLoadError (logged once already) or the library's config message naming the key.
      if (err.name !== "WecomLoadError") this.log("error", accountId, `cannot start: ${err.message}`);
      throw err;
    }
    const route = entry.instance.routes().find((r) => r.accountId === accountId);
    if (!route) {
      this.maybeRetire(entry);
      throw new Error(`channels.wecom has no enabled account "${accountId}"`);
    }
    const path = normalizeWebhookPath(route.path);
    const taken = this.active.get(path);
    if (taken && taken.accountId !== accountId) {
      this.maybeRetire(entry);
      throw new Error(`webhookPath ${path} is already served by WeCom account "${taken.accountId}"`);
    }
    const target = { entry, accountId, path, ctx };
    entry.accounts.add(accountId);
    this.active.set(path, target);
    const served = this.httpMode === "registerHttpRoute" && !this.routedPaths.has(path)
      ? "api.registerHttpHandler (path added after start)"
      : `api.${this.httpMode}`;
    if (this.httpMode === "none" || (this.httpMode === "registerHttpRoute" && !this.routedPaths.has(path) && !this.catchAll)) {
      this.log("error", accountId, `webhook ${path} cannot be served: this gateway offers no HTTP registration for it; restart the gateway`);
    }
    this.log("info", accountId, `webhook listening on ${path} (GET VerifyURL, POST callbacks) via ${served}`);
    ctx.setStatus?.({ accountId, running: true, webhookPath: path, mode: "webhook", lastError: null });
    try {
      await new Promise((resolve) => {
        if (ctx.abortSignal?.aborted) return resolve();
        ctx.abortSignal?.addEventListener("abort", () => resolve(), { once: true });
        if (!ctx.abortSignal) this.log("warn", accountId, "no abortSignal: account runs until the gateway exits");
      });
    } finally {
      if (this.active.get(path) === target) this.active.delete(path);
      entry.accounts.delete(accountId);
      if (this.accountLogs.get(accountId) === ctx.log) this.accountLogs.delete(accountId);
      this.log("info", accountId, `webhook ${path} released`);
      this.maybeRetire(entry);
    }
  }

  /** The library's status entry of a running account, or null. */
  accountStatus(accountId) {
    for (const target of this.active.values()) {
      if (target.accountId !== accountId) continue;
      try {
        return target.entry.instance.status().accounts.find((a) => a.accountId === accountId) ?? null;
      } catch {
        return null;
      }
    }
    return null;
  }

  // --------------------------------------------------------------------------- HTTP

  /**
   * The webhook handler. `owned` is true when the gateway routed this exact path to us
   * (registerHttpRoute): then we always answer, never the Control UI.
   */
  async handleRequest(req, res, { owned }) {
    const rawUrl = req.url ?? "/";
    const q = rawUrl.indexOf("?");
    let pathname;
    try {
      pathname = decodeURIComponent(q >= 0 ? rawUrl.slice(0, q) : rawUrl);
    } catch {
      pathname = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    }
    const path = normalizeWebhookPath(pathname);
    const target = this.active.get(path);
    if (!target || !target.entry.instance.alive) {
      if (!owned) return false;
      sendText(res, 503, `WeCom account for ${path} is not running (see: clawdbot channels status --probe)`);
      return true;
    }
    let body;
    try {
      body = await readBody(req, HARD_BODY_LIMIT);
    } catch (err) {
      sendText(res, 400, `could not read body: ${err.message}`);
      return true;
    }
    if (body.tooLarge) {
      this.log("warn", target.accountId, `413 body too large — ${req.method} ${path} from ${req.socket?.remoteAddress ?? ""}`);
      sendText(res, 413, "body too large");
      return true;
    }
    let result;
    try {
      result = target.entry.instance.handleHttp({
        method: req.method ?? "GET",
        path: target.path,
        query: q >= 0 ? rawUrl.slice(q + 1) : "",
        contentType: String(req.headers["content-type"] ?? ""),
        body: body.body,
        remoteAddr: req.socket?.remoteAddress ?? "",
      });
    } catch (err) {
      this.log("error", target.accountId, `request failed inside the library: ${err.message}`);
      sendText(res, 500, err.message);
      return true;
    }
    res.statusCode = result.status;
    res.setHeader("Content-Type", result.contentType);
    res.setHeader("Content-Length", result.body.length);
    res.setHeader("Cache-Control", "no-store");
    res.end(result.body);
    return true;
  }

  // --------------------------------------------------------------------------- agent runs

  accountLogFor(accountId) {
    return {
      info: (m) => this.log("info", accountId, m),
      warn: (m) => this.log("warn", accountId, m),
      error: (m) => this.log("error", accountId, m),
      debug: (m) => this.log("debug", accountId, m),
    };
  }

  /** One inbound message → the agent (the zalo pattern) → blocks into the stream. */
  async runAgent(entry, msg) {
    const inst = entry.instance;
    const log = this.accountLogFor(msg.accountId);
    let delivered = false;
    let failure = null;
    let closed = false;
    const push = (text) => {
      if (closed || !inst.alive) return;
      const status = inst.push(msg.streamId, text, PushMode.APPEND);
      if (status !== Status.OK) {
        closed = true;
        log.warn(`stream ${msg.streamId} no longer accepts output (expired or finished); the rest of the answer is dropped`);
      }
    };
    const finish = (kind, text) => {
      if (closed || !inst.alive) return;
      closed = true;
      inst.finish(msg.streamId, kind, text ?? "");
    };
    try {
      const core = this.runtime;
      if (!core?.channel?.reply?.dispatchReplyWithBufferedBlockDispatcher) {
        throw new Error("this gateway's plugin runtime has no channel.reply.dispatchReplyWithBufferedBlockDispatcher");
      }
      const cfg = this.currentConfig();
      const isGroup = msg.peerKind === "group";
      const peerId = isGroup ? msg.chatId : msg.senderId;
      const rawBody = msg.quoteText ? `> ${msg.quoteText.split("\n").join("\n> ")}\n\n${msg.text}` : msg.text;
      const route = core.channel.routing.resolveAgentRoute({
        cfg,
        channel: "wecom",
        accountId: msg.accountId,
        peer: { kind: isGroup ? "group" : "dm", id: peerId },
      });

      // Slash commands: the library already applied dm.policy (the sender may talk to the agent);
      // whether they may run commands follows Clawdbot's usual allow-from rule.
      let commandAuthorized;
      const commands = core.channel.commands;
      if (commands?.shouldComputeCommandAuthorized?.(rawBody, cfg)) {
        const account = resolveAccount(cfg, msg.accountId);
        const stored = await this.storedAllowFrom(msg.accountId);
        const allowFrom = [...account.allowFrom, ...stored];
        const allowed = allowFrom.includes("*") || allowFrom.includes(msg.senderId);
        commandAuthorized = commands.resolveCommandAuthorizedFromAuthorizers({
          useAccessGroups: cfg.commands?.useAccessGroups !== false,
          authorizers: [{ configured: allowFrom.length > 0, allowed }],
        });
      }

      const fromLabel = isGroup ? `group:${msg.chatId}` : `user:${msg.senderId}`;
      const storePath = core.channel.session.resolveStorePath(cfg.session?.store, { agentId: route.agentId });
      const envelope = core.channel.reply.resolveEnvelopeFormatOptions(cfg);
      const previousTimestamp = core.channel.session.readSessionUpdatedAt({ storePath, sessionKey: route.sessionKey });
      const body = core.channel.reply.formatAgentEnvelope({
        channel: "WeCom",
        from: fromLabel,
        timestamp: Date.now(),
        previousTimestamp,
        envelope,
        body: rawBody,
      });
      const ctxPayload = core.channel.reply.finalizeInboundContext({
        Body: body,
        RawBody: rawBody,
        CommandBody: msg.text,
        From: isGroup ? `wecom:group:${msg.chatId}` : `wecom:${msg.senderId}`,
        To: msg.target,
        SessionKey: route.sessionKey,
        AccountId: route.accountId,
        ChatType: isGroup ? "group" : "direct",
        ConversationLabel: fromLabel,
        SenderId: msg.senderId,
        CommandAuthorized: commandAuthorized,
        WasMentioned: isGroup ? true : undefined, // WeCom only forwards group messages that @mention the bot
        Provider: "wecom",
        Surface: "wecom",
        MessageSid: msg.messageId,
        OriginatingChannel: "wecom",
        OriginatingTo: msg.target,
        ...mediaFields(msg.media),
      });
      await core.channel.session.recordInboundSession({
        storePath,
        sessionKey: ctxPayload.SessionKey ?? route.sessionKey,
        ctx: ctxPayload,
        onRecordError: (err) => log.warn(`failed updating session meta: ${String(err)}`),
      });
      await core.channel.reply.dispatchReplyWithBufferedBlockDispatcher({
        ctx: ctxPayload,
        cfg,
        dispatcherOptions: {
          deliver: async (payload, info) => {
            // Only answer text reaches WeCom: no tool summaries, no reasoning.
            if (info?.kind === "tool") return;
            if (typeof payload?.text === "string" && payload.text.startsWith(REASONING_PREFIX)) return;
            // Local JPEG/PNG files the agent produced go out as msg_item images; everything
            // else (remote urls, other formats, over the limits) stays a link in the text.
            const links = [];
            for (const media of payloadMedia(payload)) {
              const attached = closed || !inst.alive ? { ok: false } : attachLocalImage(inst, msg.streamId, media);
              if (!attached.ok) {
                if (attached.error) log.info?.(`image ${media} sent as a link: ${attached.error}`);
                links.push(String(media));
              }
            }
            const text = [payload?.text?.trim() ? payload.text : "", ...links].filter(Boolean).join("\n");
            if (!text) return;
            push(delivered ? `\n\n${text}` : text);
            delivered = true;
          },
          onError: (err, info) => {
            failure = failure ?? err;
            log.warn(`${info?.kind ?? "reply"} delivery failed: ${String(err)}`);
          },
        },
      });
      if (failure && !delivered) finish(FinishKind.FAILED, readableFailure(failure));
      else finish(FinishKind.DONE, "");
    } catch (err) {
      log.error(`agent run for ${msg.target} (msgid ${msg.messageId}) failed: ${err?.stack ?? err}`);
      finish(FinishKind.FAILED, readableFailure(err));
    }
  }

  async storedAllowFrom(accountId) {
    // OpenClaw: readAllowFromStore({channel, accountId}) (its old positional form silently returns []).
    const read = this.runtime?.channel?.pairing?.readAllowFromStore;
    if (this.openclaw && typeof read === "function") {
      try {
        const list = await read({ channel: "wecom", accountId });
        if (Array.isArray(list)) return list.map((e) => String(e).replace(/^wecom:/i, ""));
      } catch (err) {
        this.log("warn", accountId, `readAllowFromStore failed: ${err.message}`);
      }
    }
    try {
      return JSON.parse(this.getStore().get(`wecom:${accountId}:allowFrom`, "list") ?? "[]");
    } catch {
      return [];
    }
  }

  // --------------------------------------------------------------------------- probe

  /** status.probeAccount: the library's self-test + the same VerifyURL over the gateway's listener. */
  async probeAccount(params) {
    this.probing += 1;
    try {
      return await this.#probeAccount(params);
    } finally {
      this.probing -= 1;
    }
  }

  async #probeAccount({ account, cfg, timeoutMs }) {
    const started = Date.now();
    const done = (fields) => ({ accountId: account.accountId, ...fields, elapsedMs: Date.now() - started });
    let library;
    try {
      library = this.ensureLibrary();
    } catch (err) {
      return done({ ok: false, error: err.message });
    }
    let temp = null;
    let instance = this.findEntry(cfg)?.instance;
    if (!instance) {
      try {
        temp = library.createInstance(this.configKey(cfg), { log: () => {}, dispatch: () => false });
        instance = temp;
      } catch (err) {
        return done({ ok: false, error: err.message });
      }
    }
    try {
      let report;
      try {
        report = instance.probe(account.accountId);
      } catch (err) {
        return done({ ok: false, error: err.message });
      }
      const a = report.accounts?.[0] ?? {};
      const result = {
        webhookPath: a.webhookPath,
        keyValid: a.keyValid,
        cryptoRoundTrip: a.cryptoRoundTrip,
        route: a.route,
        library: `${library.pluginVersion} (ABI ${library.abiVersionString})`,
        http: this.httpMode,
      };
      if (!a.ok) {
        return done({ ok: false, ...result, error: a.cryptoRoundTrip ? a.route?.detail ?? "self-test failed" : "encrypt/decrypt round trip failed" });
      }
      const listener = await this.probeListener(a, cfg, timeoutMs);
      return done({ ok: listener.ok, ...result, listener, ...(listener.ok ? {} : { error: listener.detail }) });
    } finally {
      temp?.destroy();
    }
  }

  probeListener(probe, cfg, timeoutMs) {
    const port = Number(process.env.CLAWDBOT_GATEWAY_PORT || process.env.OPENCLAW_GATEWAY_PORT) || Number(cfg?.gateway?.port) || 18789;
    const tls = cfg?.gateway?.tls?.enabled === true;
    const url = `${tls ? "https" : "http"}://127.0.0.1:${port}${probe.request.path}?${probe.request.query}`;
    const shownUrl = `${tls ? "https" : "http"}://127.0.0.1:${port}${probe.request.path}`;
    return new Promise((resolve) => {
      const lib = tls ? https : http;
      const req = lib.get(url, { timeout: Math.min(Math.max(Number(timeoutMs) || 5000, 1000), 10_000), rejectUnauthorized: false }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const ok = res.statusCode === 200 && text === probe.expectBody;
          resolve({
            ok,
            url: shownUrl,
            status: res.statusCode,
            detail: ok
              ? "VerifyURL through the gateway listener answered with the bare plaintext"
              : `VerifyURL through the gateway listener answered ${res.statusCode}: ${text.slice(0, 160)}`,
          });
        });
      });
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", (err) => resolve({ ok: false, url: shownUrl, detail: `gateway listener ${shownUrl} unreachable: ${err.message}` }));
    });
  }
}

module.exports = { WecomHost, readableFailure, payloadText, mediaFields };
