"use strict";
// @clawdbot/wecom: the Clawdbot / OpenClaw entry. A thin adapter: the ChannelPlugin below maps the
// host's adapters onto libclawdbot_wecom.so (lib/native.js) through lib/host.js.

const fs = require("node:fs");
const path = require("node:path");

const { WecomHost } = require("./host.js");
const accounts = require("./accounts.js");

const PLUGIN_ID = "wecom";
const pkg = require("../package.json");
const channelMeta = pkg.clawdbot.channel;

function readManifest() {
  for (const name of ["clawdbot.plugin.json", "openclaw.plugin.json"]) {
    const file = path.join(__dirname, "..", name);
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8"));
  }
  return { configSchema: { type: "object" } };
}

const PASSIVE_ONLY =
  "WeCom intelligent bots are passive-reply only: sendText is not supported; answers go out as stream replies to the user's message";

function createWecomChannel(host) {
  const manifest = readManifest();
  const basePath = (cfg, accountId) =>
    cfg?.channels?.wecom?.accounts?.[accountId] ? `channels.wecom.accounts.${accountId}.` : "channels.wecom.";

  const refuseSend = async ({ to, accountId, cfg }) => {
    let error = PASSIVE_ONLY;
    try {
      const entry = host.library ? host.findEntry(cfg) : null;
      if (entry) error = entry.instance.sendText(accountId ?? "", to ?? "", "").error;
    } catch {
      /* keep the static text */
    }
    host.log("warn", accountId ?? "", `outbound send to ${to ?? "?"} refused: ${error}`);
    return { channel: PLUGIN_ID, ok: false, messageId: "", error };
  };

  return {
    id: PLUGIN_ID,
    meta: { ...channelMeta, id: PLUGIN_ID },
    capabilities: {
      chatTypes: ["direct", "group"],
      media: false,
      reactions: false,
      threads: false,
      polls: false,
      nativeCommands: false,
      blockStreaming: true,
    },
    reload: { configPrefixes: ["channels.wecom"] },
    configSchema: { schema: manifest.configSchema },
    config: {
      listAccountIds: (cfg) => accounts.listAccountIds(cfg),
      resolveAccount: (cfg, accountId) => accounts.resolveAccount(cfg, accountId),
      defaultAccountId: (cfg) => accounts.defaultAccountId(cfg),
      isEnabled: (account) => account.enabled !== false,
      disabledReason: () => "disabled (channels.wecom enabled: false)",
      isConfigured: (account) => Boolean(account?.configured),
      unconfiguredReason: () => "channels.wecom needs token and encodingAESKey",
      describeAccount: (account) => ({
        accountId: account.accountId,
        name: account.name,
        enabled: account.enabled,
        configured: account.configured,
        webhookPath: account.webhookPath,
        dmPolicy: account.dmPolicy,
      }),
      resolveAllowFrom: ({ cfg, accountId }) => accounts.resolveAccount(cfg, accountId).allowFrom,
      formatAllowFrom: ({ allowFrom }) =>
        allowFrom.map((e) => String(e).trim()).filter(Boolean).map((e) => e.replace(/^wecom:/i, "")),
    },
    security: {
      resolveDmPolicy: ({ cfg, accountId, account }) => {
        const id = accountId ?? account?.accountId ?? accounts.DEFAULT_ACCOUNT_ID;
        const base = basePath(cfg, id);
        return {
          policy: account?.dmPolicy ?? "pairing",
          allowFrom: account?.allowFrom ?? [],
          policyPath: `${base}dm.policy`,
          allowFromPath: `${base}dm.`,
          approveHint: "Approve via: clawdbot pairing approve wecom <code>",
          normalizeEntry: (raw) => String(raw).replace(/^wecom:/i, ""),
        };
      },
    },
    pairing: {
      idLabel: "wecomUserId",
      normalizeAllowEntry: (entry) => String(entry).replace(/^wecom:/i, ""),
      // WeCom bots cannot message first: the approved user simply talks again.
      notifyApproval: async ({ id }) => {
        host.log("info", "", `approved ${id}; WeCom bots cannot notify first — the user's next message reaches the agent`);
      },
    },
    groups: {
      resolveRequireMention: ({ cfg, accountId, groupId }) => {
        const groups = accounts.resolveAccount(cfg, accountId).config.groups ?? {};
        return Boolean((groupId && groups[groupId]?.requireMention) ?? groups["*"]?.requireMention ?? false);
      },
    },
    threading: { resolveReplyToMode: () => "off" },
    messaging: {
      normalizeTarget: (raw) => String(raw ?? "").trim() || undefined,
      targetResolver: {
        looksLikeId: (raw) => /^(wecom:)?(group:)?[\w.@-]+$/i.test(String(raw ?? "").trim()),
        hint: "wecom:<userid> | wecom:group:<chatid>",
      },
    },
    outbound: {
      deliveryMode: "direct",
      textChunkLimit: 20480,
      sendText: refuseSend,
      sendMedia: refuseSend,
    },
    status: {
      defaultRuntime: {
        accountId: accounts.DEFAULT_ACCOUNT_ID,
        running: false,
        lastStartAt: null,
        lastStopAt: null,
        lastError: null,
      },
      probeAccount: (params) => host.probeAccount(params),
      buildAccountSnapshot: ({ account, runtime, probe, audit }) => {
        const live = host.accountStatus(account.accountId);
        return {
          accountId: account.accountId,
          name: account.name,
          enabled: account.enabled,
          configured: account.configured,
          running: runtime?.running ?? false,
          mode: "webhook",
          webhookPath: live?.webhookPath ?? account.webhookPath,
          dmPolicy: account.dmPolicy,
          lastStartAt: runtime?.lastStartAt ?? null,
          lastStopAt: runtime?.lastStopAt ?? null,
          // A start failure (library missing, config rejected) first; else the last rejected request.
          lastError: runtime?.lastError ?? host.loadError?.message ?? live?.lastError ?? null,
          lastInboundAt: live?.lastInboundAt ?? runtime?.lastInboundAt ?? null,
          lastOutboundAt: runtime?.lastOutboundAt ?? null,
          openStreams: live?.openStreams,
          counters: live?.counters,
          probe,
          audit,
        };
      },
      buildChannelSummary: ({ snapshot }) => ({
        configured: snapshot.configured ?? false,
        running: snapshot.running ?? false,
        mode: "webhook",
        webhookPath: snapshot.webhookPath ?? null,
        lastStartAt: snapshot.lastStartAt ?? null,
        lastStopAt: snapshot.lastStopAt ?? null,
        lastError: snapshot.lastError ?? null,
        lastInboundAt: snapshot.lastInboundAt ?? null,
        probe: snapshot.probe,
        lastProbeAt: snapshot.lastProbeAt ?? null,
      }),
    },
    gateway: {
      startAccount: (ctx) => host.startAccount(ctx),
    },
  };
}

/**
 * Webhook paths: prefer api.registerHttpRoute (exact path, auth "plugin": clawdbot 2026.1.24-3 and
 * OpenClaw); keep api.registerHttpHandler (clawdbot 2026.1.x, removed in OpenClaw 2026.3.2) as a
 * catch-all for paths configured after start, or as the only way where registerHttpRoute is absent.
 */
function registerHttp(api, host) {
  const paths = accounts.webhookPaths(api.config);
  if (paths.length === 0) paths.push("/wecom");
  const handlerRoute = (req, res) => host.handleRequest(req, res, { owned: true });
  if (typeof api.registerHttpRoute === "function") {
    for (const p of paths) {
      api.registerHttpRoute({ path: p, auth: "plugin", match: "exact", handler: handlerRoute });
      host.routedPaths.add(p);
    }
    host.httpMode = "registerHttpRoute";
    if (typeof api.registerHttpHandler === "function") {
      api.registerHttpHandler((req, res) => host.handleRequest(req, res, { owned: false }));
      host.catchAll = true;
    }
  } else if (typeof api.registerHttpHandler === "function") {
    api.registerHttpHandler((req, res) => host.handleRequest(req, res, { owned: false }));
    host.httpMode = "registerHttpHandler";
    host.catchAll = true;
  } else {
    host.httpMode = "none";
    api.logger?.error?.("wecom: this gateway offers neither api.registerHttpRoute nor api.registerHttpHandler; WeCom webhooks cannot be served");
  }
  api.logger?.debug?.(`wecom: HTTP via api.${host.httpMode} for ${paths.join(", ")}`);
}

/**
 * OpenClaw only: agent work that outlives the webhook's HTTP reply must be admitted through
 * runDetachedWebhookWork (openclaw/plugin-sdk/webhook-request-guards), or the gateway refuses it
 * ("Gateway is draining…"). Imported dynamically (this file is CommonJS and Clawdbot has no such
 * module); the import settles long before the first webhook arrives. Without it runs are plain.
 */
function loadDetachedWork(host) {
  import("openclaw/plugin-sdk/webhook-request-guards")
    .then((mod) => {
      const fn = mod?.runDetachedWebhookWork ?? mod?.default?.runDetachedWebhookWork;
      if (typeof fn === "function") {
        host.runDetached = fn;
        host.log("debug", "", "agent runs are admitted through runDetachedWebhookWork");
      } else host.log("warn", "", "openclaw/plugin-sdk/webhook-request-guards has no runDetachedWebhookWork; agent runs are not admitted as detached work");
    })
    .catch((err) => host.log("warn", "", `cannot import openclaw/plugin-sdk/webhook-request-guards (${err.message}); agent runs are not admitted as detached work`));
}

const plugin = {
  id: PLUGIN_ID,
  name: "WeCom",
  description: pkg.description,
  version: pkg.version,
  register(api) {
    const host = new WecomHost({ api });
    registerHttp(api, host);
    if (host.openclaw) loadDetachedWork(host);
    api.registerChannel({ plugin: createWecomChannel(host) });
  },
};

module.exports = plugin;
module.exports.default = plugin;
module.exports.createWecomChannel = createWecomChannel;
module.exports.WecomHost = WecomHost;
