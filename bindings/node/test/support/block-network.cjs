"use strict";
// Preloaded (`node --require`, via NODE_OPTIONS) into every process of the OpenClaw end-to-end test:
// refuses every TCP connection to a host that is not loopback. OpenClaw's gateway fetches a plugin
// feed from the internet on each start and has no switch for it; the test must stay on 127.0.0.1.
// net.Socket#connect is the one funnel for net/tls/http(s) and fetch (undici), so it is wrapped:
// a non-loopback host fails at once with ECONNREFUSED-like error, on the next tick, like a refused
// connection would. Unix sockets and loopback addresses pass, and so do the hosts named in
// $CWC_NET_ALLOW_HOSTS (comma-separated; the test sets it to the npm registry only for
// `plugins install`, whose npm child fetches koffi). Blocked attempts are appended to
// $CWC_BLOCKED_NET_LOG when set (one line each), so the test can show what was refused.
const net = require("node:net");
const fs = require("node:fs");

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|::1|\[::1\]|::ffff:127(?:\.\d{1,3}){3}|0:0:0:0:0:0:0:1)$/i;

function targetOf(args) {
  let a = args[0];
  if (Array.isArray(a)) a = a[0]; // internal normalized form [options, cb]
  if (a && typeof a === "object") {
    if (a.path) return null;
    return { host: a.host ?? "localhost", port: a.port };
  }
  if (typeof a === "string" && !/^\d+$/.test(a)) return null; // unix socket path
  return { host: typeof args[1] === "string" ? args[1] : "localhost", port: a };
}

const allowed = new Set(
  String(process.env.CWC_NET_ALLOW_HOSTS ?? "")
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean),
);

const original = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connect(...args) {
  const target = targetOf(args);
  if (target && !LOOPBACK.test(String(target.host)) && !allowed.has(String(target.host).toLowerCase())) {
    const line = `blocked connect to ${target.host}:${target.port} (pid ${process.pid})`;
    if (process.env.CWC_BLOCKED_NET_LOG) {
      try {
        fs.appendFileSync(process.env.CWC_BLOCKED_NET_LOG, `${line}\n`);
      } catch {
        /* best effort */
      }
    }
    const err = Object.assign(new Error(`e2e network block: ${line}`), { code: "ECONNREFUSED" });
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return original.apply(this, args);
};
