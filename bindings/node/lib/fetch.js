"use strict";
// The bridge's outbound HTTP for the library (ABI 1.1 callback_fetch): WeCom media downloads and
// the response_url fallback. Node's built-in fetch (undici) does the HTTP and TLS; this file only
// enforces the library's limits — a total time limit and a body size cap checked while reading —
// and maps the outcome onto the ABI's four cases. Never throws; never logs the url.

const { FetchOutcome } = require("./native.js");

/**
 * @param {{ method: string, url: string, contentType?: string, body?: Buffer, maxResponseBytes: number, timeoutMs: number }} req
 * @returns {Promise<{ outcome: number, status: number, body: Buffer, error: string }>}
 */
async function performFetch(req, { fetchImpl = globalThis.fetch } = {}) {
  const controller = new AbortController();
  let timedOut = false;
  let tooLarge = false;
  const tooLargeResult = () => ({ outcome: FetchOutcome.TOO_LARGE, status: 0, body: Buffer.alloc(0), error: `more than ${req.maxResponseBytes} bytes` });
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, Math.max(1, req.timeoutMs || 30_000));
  timer.unref?.();
  try {
    const isPost = req.method === "POST";
    const res = await fetchImpl(req.url, {
      method: isPost ? "POST" : "GET",
      headers: isPost ? { "Content-Type": req.contentType || "application/json" } : undefined,
      body: isPost ? req.body : undefined,
      redirect: "follow", // WeCom's media urls may redirect to a CDN
      signal: controller.signal,
    });
    const chunks = [];
    let size = 0;
    if (res.body) {
      for await (const chunk of res.body) {
        size += chunk.length;
        if (size > req.maxResponseBytes) {
          tooLarge = true;
          break;
        }
        chunks.push(Buffer.from(chunk));
      }
    }
    if (tooLarge) {
      controller.abort(); // stop the download; the rest is never read
      return tooLargeResult();
    }
    return { outcome: FetchOutcome.OK, status: res.status, body: Buffer.concat(chunks), error: "" };
  } catch (err) {
    if (tooLarge) return tooLargeResult();
    if (timedOut) {
      return { outcome: FetchOutcome.TIMEOUT, status: 0, body: Buffer.alloc(0), error: `no complete answer within ${req.timeoutMs} ms` };
    }
    // undici puts the network reason (ECONNREFUSED, certificate errors, ...) in err.cause.
    const cause = err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(err);
    return { outcome: FetchOutcome.FAILED, status: 0, body: Buffer.alloc(0), error: String(cause).slice(0, 200) };
  } finally {
    clearTimeout(timer);
  }
}

module.exports = { performFetch };
