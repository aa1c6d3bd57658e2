"use strict";
// Reads accounts out of `channels.wecom` for Clawdbot's config adapter (listing, status, paths).
// This is only a read-out for the host's UI: the library validates the same object when an
// instance is created, and its answer (routes, errors) is authoritative.

const DEFAULT_ACCOUNT_ID = "default";
const DEFAULT_WEBHOOK_PATH = "/wecom";
// Keys that only exist at the top level (docs/configuration.md).
const TOP_LEVEL_ONLY = new Set(["accounts", "defaultAccount", "maxOpenStreams"]);

function section(cfg) {
  const s = cfg?.channels?.wecom;
  return s && typeof s === "object" ? s : {};
}

function hasAccounts(cfg) {
  const a = section(cfg).accounts;
  return Boolean(a && typeof a === "object" && Object.keys(a).length > 0);
}

/** Account ids in declaration order; a single-account config has just "default". */
function listAccountIds(cfg) {
  return hasAccounts(cfg) ? Object.keys(section(cfg).accounts) : [DEFAULT_ACCOUNT_ID];
}

function defaultAccountId(cfg) {
  const ids = listAccountIds(cfg);
  const named = section(cfg).defaultAccount?.trim?.();
  if (named && ids.includes(named)) return named;
  if (ids.includes(DEFAULT_ACCOUNT_ID)) return DEFAULT_ACCOUNT_ID;
  return ids[0] ?? DEFAULT_ACCOUNT_ID;
}

function normalizeWebhookPath(raw) {
  const trimmed = String(raw ?? "").trim() || DEFAULT_WEBHOOK_PATH;
  const withSlash = trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
  return withSlash.length > 1 && withSlash.endsWith("/") ? withSlash.replace(/\/+$/, "") || "/" : withSlash;
}

/** The account's effective settings: top-level defaults, then the account's own keys (dm merged). */
function resolveAccount(cfg, accountId) {
  const s = section(cfg);
  const id = accountId?.trim?.() || defaultAccountId(cfg);
  const base = Object.fromEntries(Object.entries(s).filter(([k]) => !TOP_LEVEL_ONLY.has(k)));
  const own = hasAccounts(cfg) ? s.accounts[id] ?? {} : {};
  const merged = { ...base, ...own, dm: { ...(base.dm ?? {}), ...(own.dm ?? {}) } };
  const enabled = s.enabled !== false && merged.enabled !== false && (!hasAccounts(cfg) || id in s.accounts);
  const configured = Boolean(String(merged.token ?? "").trim() && String(merged.encodingAESKey ?? "").trim());
  return {
    accountId: id,
    name: typeof merged.name === "string" && merged.name.trim() ? merged.name.trim() : undefined,
    enabled,
    configured,
    webhookPath: normalizeWebhookPath(merged.webhookPath),
    dmPolicy: merged.dm.policy ?? "pairing",
    allowFrom: Array.isArray(merged.dm.allowFrom) ? merged.dm.allowFrom.map(String) : [],
    config: merged,
  };
}

/** Paths of the enabled accounts, as the gateway will serve them. */
function webhookPaths(cfg) {
  if (section(cfg).enabled === false) return [];
  const paths = new Set();
  for (const id of listAccountIds(cfg)) {
    const a = resolveAccount(cfg, id);
    if (a.enabled) paths.add(a.webhookPath);
  }
  return [...paths];
}

module.exports = {
  DEFAULT_ACCOUNT_ID,
  listAccountIds,
  defaultAccountId,
  resolveAccount,
  normalizeWebhookPath,
  webhookPaths,
};
