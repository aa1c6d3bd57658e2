#!/usr/bin/env node
"use strict";
// Generates clawdbot.plugin.json and openclaw.plugin.json from the repository's plugin.json (the
// single source of id, version, channels and the channels.wecom schema), and checks that
// package.json agrees with it. Usage: node scripts/gen-manifest.js [--check]
const fs = require("node:fs");
const path = require("node:path");

const here = path.resolve(__dirname, "..");
const source = path.resolve(here, "..", "..", "plugin.json");
const check = process.argv.includes("--check");
const top = JSON.parse(fs.readFileSync(source, "utf8"));
const pkg = JSON.parse(fs.readFileSync(path.join(here, "package.json"), "utf8"));

// Hosts compile this schema with ajv; a "$id" would collide when it is compiled twice in one
// process, and "$schema" is implied (draft-07).
const { $schema, $id, ...schema } = top.configSchema;
const manifest = {
  id: top.id,
  name: top.name,
  description: top.description,
  version: top.version,
  channels: top.channels,
  configSchema: schema,
};
const openclaw = { ...manifest, channelConfigs: Object.fromEntries(top.channels.map((c) => [c, { schema }])) };

const problems = [];
if (pkg.version !== top.version) problems.push(`package.json version ${pkg.version} != plugin.json ${top.version}`);
for (const host of ["clawdbot", "openclaw"]) {
  if (pkg[host]?.channel?.id !== top.id) problems.push(`package.json ${host}.channel.id must be "${top.id}"`);
}
if (pkg.name.split("/").pop() !== top.id) problems.push(`package name ${pkg.name} must end in /${top.id}`);
if (problems.length) {
  console.error(`gen-manifest: ${problems.join("; ")}`);
  process.exit(1);
}

const outputs = {
  "clawdbot.plugin.json": manifest,
  "openclaw.plugin.json": openclaw,
};
let stale = false;
for (const [name, value] of Object.entries(outputs)) {
  const file = path.join(here, name);
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (check) {
    if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) {
      console.error(`gen-manifest: ${name} is stale; run node scripts/gen-manifest.js`);
      stale = true;
    }
  } else {
    fs.writeFileSync(file, text);
    console.log(`gen-manifest: wrote ${name} (${top.id} ${top.version})`);
  }
}
process.exit(stale ? 1 : 0);
