// A fake OpenAI-compatible model provider on 127.0.0.1 for the end-to-end test: every
// POST .../chat/completions is answered, streamed as SSE in a few chunks, with
//   "FAKE-MODEL says: <n>"
// and the request's last user text is appended (one JSON line per request) to --log, so the
// test can check which messages reached the model.
//   node fake-openai.mjs --port-file FILE --log FILE
import fs from "node:fs";
import http from "node:http";

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const portFile = opt("--port-file");
const logFile = opt("--log");
let count = 0;

function lastUserText(body) {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    const m = messages[i];
    if (m?.role !== "user") continue;
    // OpenClaw appends its own context block as a separate user message after the real one.
    const first = typeof m.content === "string" ? m.content : Array.isArray(m.content) ? m.content[0]?.text ?? "" : "";
    if (first.startsWith("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>")) continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content)) return m.content.map((p) => p?.text ?? "").join("");
  }
  return "";
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    if (req.method !== "POST" || !req.url.endsWith("/chat/completions")) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `fake provider: no ${req.method} ${req.url}` } }));
      return;
    }
    let body = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      /* answered anyway */
    }
    count += 1;
    const n = count;
    if (logFile) fs.appendFileSync(logFile, `${JSON.stringify({ n, user: lastUserText(body) })}\n`);
    const answer = `FAKE-MODEL says: ${n}`;
    const id = `chatcmpl-fake-${n}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta, finish = null, extra = {}) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model ?? "fake-1", choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
    if (body.stream === false) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id, object: "chat.completion", created, model: body.model ?? "fake-1", choices: [{ index: 0, message: { role: "assistant", content: answer }, finish_reason: "stop" }], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } }));
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const parts = ["FAKE-MODEL ", "says: ", String(n)];
    res.write(chunk({ role: "assistant", content: "" }));
    let i = 0;
    const timer = setInterval(() => {
      if (i < parts.length) {
        res.write(chunk({ content: parts[i] }));
        i += 1;
        return;
      }
      clearInterval(timer);
      res.write(chunk({}, "stop", { usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } }));
      res.write("data: [DONE]\n\n");
      res.end();
    }, 30);
  });
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  if (portFile) fs.writeFileSync(portFile, String(port));
  console.log(`fake-openai listening on 127.0.0.1:${port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
