"use strict";
// The C ABI of libclawdbot_wecom.so, seen from node through koffi. Nothing WeCom-specific lives
// here: this file only moves bytes across clawdbot_wecom.h (every struct and signature below
// mirrors that header) and turns the host callbacks into calls on a small JS `hooks` object.
//
// Threading: every call is synchronous on the JS thread. The plugin starts no threads, and it
// invokes the host callbacks only from inside on_http_request / on_tick / on_stream_finish /
// on_fetch_done, i.e. on this same thread while the call is running; koffi runs those JS callbacks
// re-entrantly. The hooks therefore must not call back into the same instance (the ABI forbids
// it): dispatch only queues, fetch only starts a request (its result comes back later).

const fs = require("node:fs");
const path = require("node:path");

const ABI_MAJOR = 1;
const ABI_MINOR = 1;
const ABI_VERSION = (ABI_MAJOR << 16) | ABI_MINOR;

const Status = Object.freeze({
  OK: 0,
  INVALID_ARGUMENT: 1,
  ABI_MISMATCH: 2,
  CONFIG: 3,
  NOT_FOUND: 4,
  UNSUPPORTED: 5,
  STREAM_CLOSED: 6,
  INTERNAL: 7,
});
const StatusName = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k]));
const LogLevel = Object.freeze({ TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 });
const PushMode = Object.freeze({ APPEND: 0, REPLACE: 1 });
const FinishKind = Object.freeze({ DONE: 0, FAILED: 1 });
const PeerKind = Object.freeze({ DIRECT: 0, GROUP: 1 });
const FetchOutcome = Object.freeze({ OK: 0, FAILED: 1, TIMEOUT: 2, TOO_LARGE: 3 });

/** Raised when the library cannot be used at all (missing file, dlopen error, ABI mismatch). */
class WecomLoadError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "WecomLoadError";
  }
}

/** Raised by an ABI call that returned a non-OK status. */
class WecomAbiError extends Error {
  constructor(status, err) {
    super(err?.message || `libclawdbot_wecom returned ${StatusName[status] ?? status}`);
    this.name = "WecomAbiError";
    this.status = status;
    this.statusName = StatusName[status] ?? String(status);
    this.httpStatus = err?.http_status ?? 500;
    this.wecomCode = err?.wecom_code ?? 0;
  }
}

function platformKey() {
  return `${process.platform}-${process.arch}`;
}

/** Where the library is looked for: $CLAWDBOT_WECOM_LIBRARY, else the copy shipped in the package. */
function defaultLibraryPath() {
  const override = process.env.CLAWDBOT_WECOM_LIBRARY?.trim();
  if (override) return path.resolve(override);
  return path.join(__dirname, "..", "native", platformKey(), "libclawdbot_wecom.so");
}

let typesCache = null;

// koffi keeps named types in a process-wide registry; declare them once per process. The
// prefix keeps them apart from any other koffi user in the same gateway.
function declareTypes(koffi) {
  if (typesCache) return typesCache;
  const n = (name) => `clawdbot_wecom_${name}`;
  const str = koffi.struct(n("str"), { ptr: "void *", len: "size_t" });
  const buffer = koffi.struct(n("buffer"), { ptr: "void *", len: "size_t" });
  const error = koffi.struct(n("error"), {
    struct_size: "size_t",
    http_status: "int",
    wecom_code: "int",
    message: koffi.array("char", 512),
  });
  const inbound = koffi.struct(n("inbound_message"), {
    struct_size: "size_t",
    account_id: str,
    peer_kind: "int",
    target: str,
    sender_id: str,
    chat_id: str,
    message_id: str,
    msgtype: str,
    text: str,
    quote_text: str,
    stream_id: str,
    response_url: str,
    aibot_id: str,
    media_json: str,
  });
  const fetchRequest = koffi.struct(n("fetch_request"), {
    struct_size: "size_t",
    request_id: "uint64_t",
    account_id: str,
    method: str,
    url: str,
    content_type: str,
    body: str,
    max_response_bytes: "uint64_t",
    timeout_ms: "uint32_t",
  });
  const event = koffi.struct(n("event"), {
    struct_size: "size_t",
    account_id: str,
    event_type: str,
    sender_id: str,
    chat_id: str,
    message_id: str,
    event_json: str,
  });
  const S = n("str");
  const B = n("buffer");
  const E = n("error");
  const cb = {
    log: koffi.proto(`void ${n("log_cb")}(void *ctx, int level, ${S} account_id, ${S} line)`),
    dispatch: koffi.proto(`int ${n("dispatch_cb")}(void *ctx, const ${n("inbound_message")} *message)`),
    store_get: koffi.proto(`int ${n("store_get_cb")}(void *ctx, ${S} ns, ${S} key, ${B} *out)`),
    store_put: koffi.proto(`int ${n("store_put_cb")}(void *ctx, ${S} ns, ${S} key, ${S} value)`),
    store_free: koffi.proto(`void ${n("store_free_cb")}(void *ctx, ${B} *buffer)`),
    now_ms: koffi.proto(`int64_t ${n("now_cb")}(void *ctx)`),
    random: koffi.proto(`int ${n("random_cb")}(void *ctx, uint8_t *out, size_t len)`),
    fetch: koffi.proto(`int ${n("fetch_cb")}(void *ctx, const ${n("fetch_request")} *request)`),
    event: koffi.proto(`void ${n("event_cb")}(void *ctx, const ${n("event")} *event)`),
  };
  const hostApi = koffi.struct(n("host_api"), {
    struct_size: "size_t",
    abi_version: "uint32_t",
    host_ctx: "void *",
    callback_log: koffi.pointer(cb.log),
    callback_dispatch: koffi.pointer(cb.dispatch),
    callback_store_get: koffi.pointer(cb.store_get),
    callback_store_put: koffi.pointer(cb.store_put),
    callback_store_free: koffi.pointer(cb.store_free),
    callback_now_ms: koffi.pointer(cb.now_ms),
    callback_random: koffi.pointer(cb.random),
    callback_fetch: koffi.pointer(cb.fetch),
    callback_event: koffi.pointer(cb.event),
  });
  const httpRequest = koffi.struct(n("http_request"), {
    struct_size: "size_t",
    method: str,
    path: str,
    query: str,
    content_type: str,
    body: str,
    remote_addr: str,
  });
  const httpResponse = koffi.struct(n("http_response"), {
    struct_size: "size_t",
    status: "int",
    content_type: str,
    body: buffer,
  });
  const R = n("http_request");
  const Q = n("http_response");
  const H = n("host_api");
  const op = {
    instance_new: koffi.proto(`int ${n("on_instance_new")}(const ${H} *host, ${S} config_json, _Out_ void **out, _Inout_ ${E} *err)`),
    instance_destroy: koffi.proto(`void ${n("on_instance_destroy")}(void *instance)`),
    routes: koffi.proto(`int ${n("on_routes")}(void *instance, _Out_ ${B} *out, _Inout_ ${E} *err)`),
    http_request: koffi.proto(`int ${n("on_http_request")}(void *instance, const ${R} *request, _Inout_ ${Q} *response, _Inout_ ${E} *err)`),
    stream_push: koffi.proto(`int ${n("on_stream_push")}(void *instance, ${S} stream_id, ${S} text, int mode, _Inout_ ${E} *err)`),
    stream_finish: koffi.proto(`int ${n("on_stream_finish")}(void *instance, ${S} stream_id, int kind, ${S} text, _Inout_ ${E} *err)`),
    status: koffi.proto(`int ${n("on_status")}(void *instance, _Out_ ${B} *out, _Inout_ ${E} *err)`),
    probe: koffi.proto(`int ${n("on_probe")}(void *instance, ${S} account_id, _Out_ ${B} *out, _Inout_ ${E} *err)`),
    send_text: koffi.proto(`int ${n("on_send_text")}(void *instance, ${S} account_id, ${S} target, ${S} text, _Inout_ ${E} *err)`),
    tick: koffi.proto(`void ${n("on_tick")}(void *instance)`),
    buffer_free: koffi.proto(`void ${n("on_buffer_free")}(_Inout_ ${B} *buffer)`),
    pairing_list: koffi.proto(`int ${n("on_pairing_list")}(void *instance, ${S} account_id, _Out_ ${B} *out, _Inout_ ${E} *err)`),
    pairing_approve: koffi.proto(`int ${n("on_pairing_approve")}(void *instance, ${S} account_id, ${S} code, _Out_ ${B} *out, _Inout_ ${E} *err)`),
    fetch_done: koffi.proto(`int ${n("on_fetch_done")}(void *instance, uint64_t request_id, int outcome, int http_status, ${S} body, ${S} error_text, _Inout_ ${E} *err)`),
    stream_attach_image: koffi.proto(`int ${n("on_stream_attach_image")}(void *instance, ${S} stream_id, ${S} bytes, _Inout_ ${E} *err)`),
  };
  // The table order is the header's order; ABI 1.x only ever appends.
  const apiFields = { struct_size: "size_t", abi_version: "uint32_t", plugin_version: str };
  for (const name of Object.keys(op)) apiFields[`on_${name}`] = koffi.pointer(op[name]);
  const pluginApi = koffi.struct(n("plugin_api"), apiFields);
  typesCache = { str, buffer, error, inbound, fetchRequest, event, cb, hostApi, httpRequest, httpResponse, op, pluginApi };
  return typesCache;
}

/**
 * Loads libclawdbot_wecom.so and performs the version handshake. Throws WecomLoadError with a
 * message that says what is wrong and what to do.
 */
function loadLibrary(options = {}) {
  const libraryPath = options.libraryPath ?? defaultLibraryPath();
  let koffi;
  try {
    koffi = options.koffi ?? require("koffi");
  } catch (err) {
    throw new WecomLoadError(
      `WeCom: cannot load koffi (the FFI module the plugin uses to open libclawdbot_wecom.so): ${err.message}. ` +
        "Reinstall the plugin so its dependencies are installed: clawdbot plugins install @clawdbot/wecom",
      { cause: err },
    );
  }
  if (!fs.existsSync(libraryPath)) {
    if (!options.libraryPath && process.env.CLAWDBOT_WECOM_LIBRARY?.trim()) {
      throw new WecomLoadError(`WeCom: native library not found at ${libraryPath} (set by CLAWDBOT_WECOM_LIBRARY); fix or unset it`);
    }
    throw new WecomLoadError(
      `WeCom: native library not found at ${libraryPath}: this package ships a prebuilt libclawdbot_wecom.so ` +
        `for linux-x64 only (this machine is ${platformKey()}). Build it (scripts/build.sh release in the ` +
        "clawdbot-wecom repository) and point CLAWDBOT_WECOM_LIBRARY at build/release/src/libclawdbot_wecom.so",
    );
  }
  let lib;
  try {
    // RTLD_NOW | RTLD_LOCAL (koffi's defaults), as the header asks.
    lib = koffi.load(libraryPath);
  } catch (err) {
    throw new WecomLoadError(
      `WeCom: cannot load ${libraryPath}: ${err.message}. The library needs glibc on x86-64 (and the shared ` +
        "libraries `ldd` lists for it); set CLAWDBOT_WECOM_LIBRARY to a build for this system",
      { cause: err },
    );
  }
  const T = declareTypes(koffi);
  let abiVersion;
  let init;
  try {
    abiVersion = lib.func("uint32_t clawdbot_wecom_abi_version(void)")();
    init = lib.func("clawdbot_wecom_plugin_init", "int", [
      "uint32_t",
      koffi.inout(koffi.pointer(T.pluginApi)),
      koffi.inout(koffi.pointer(T.error)),
    ]);
  } catch (err) {
    throw new WecomLoadError(`WeCom: ${libraryPath} is not a libclawdbot_wecom library: ${err.message}`, { cause: err });
  }
  const api = { struct_size: koffi.sizeof(T.pluginApi) };
  const err = { struct_size: koffi.sizeof(T.error) };
  const status = init(ABI_VERSION, api, err);
  if (status !== Status.OK) {
    throw new WecomLoadError(`WeCom: ${libraryPath}: ${err.message || StatusName[status]}`);
  }
  if (api.struct_size < koffi.sizeof(T.pluginApi)) {
    throw new WecomLoadError(
      `WeCom: ${libraryPath} fills a plugin table of ${api.struct_size} bytes, this bridge needs ` +
        `${koffi.sizeof(T.pluginApi)}; install matching versions of the package and the library`,
    );
  }
  const fns = {};
  for (const name of Object.keys(T.op)) fns[name] = koffi.decode(api[`on_${name}`], T.op[name]);
  return new NativeLibrary({ koffi, lib, T, fns, libraryPath, abiVersion, pluginVersion: readStr(koffi, api.plugin_version) });
}

function toStr(value) {
  if (value === undefined || value === null || value === "") return { ptr: null, len: 0 };
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(String(value), "utf8");
  return buf.length ? { ptr: buf, len: buf.length } : { ptr: null, len: 0 };
}

function readBytes(koffi, s) {
  const len = Number(s?.len ?? 0);
  if (!len || !s.ptr) return Buffer.alloc(0);
  return Buffer.from(new Uint8Array(koffi.view(s.ptr, len)));
}

function readStr(koffi, s) {
  return readBytes(koffi, s).toString("utf8");
}

class NativeLibrary {
  constructor({ koffi, lib, T, fns, libraryPath, abiVersion, pluginVersion }) {
    this.koffi = koffi;
    this.lib = lib;
    this.T = T;
    this.fns = fns;
    this.libraryPath = libraryPath;
    this.abiVersion = abiVersion;
    this.pluginVersion = pluginVersion;
    this.instances = new Map(); // host_ctx id → NativeInstance
    this.nextId = 1;
    this.callbacks = null;
  }

  get abiVersionString() {
    return `${this.abiVersion >>> 16}.${this.abiVersion & 0xffff}`;
  }

  // One registered trampoline per callback for the whole process; host_ctx (a small integer
  // disguised as a pointer) says which instance a call is for.
  ensureCallbacks() {
    if (this.callbacks) return this.callbacks;
    const { koffi, T } = this;
    const owner = (ctx) => this.instances.get(Number(ctx));
    const guard = (fallback, fn) => (...args) => {
      try {
        return fn(...args);
      } catch (err) {
        // An exception must never unwind into C++; koffi would turn it into 0 (= CWC_OK).
        try {
          owner(args[0])?.hooks.log?.(LogLevel.ERROR, "", `bridge callback failed: ${err?.stack ?? err}`);
        } catch {
          /* nothing left to report to */
        }
        return fallback;
      }
    };
    const allocations = new Map(); // address → true, for store_free
    this.callbacks = {
      callback_log: koffi.register(
        guard(undefined, (ctx, level, account, line) => {
          owner(ctx)?.hooks.log?.(level, readStr(koffi, account), readStr(koffi, line));
        }),
        koffi.pointer(T.cb.log),
      ),
      callback_dispatch: koffi.register(
        guard(Status.INTERNAL, (ctx, messagePtr) => {
          const inst = owner(ctx);
          if (!inst || !inst.hooks.dispatch) return Status.INTERNAL;
          const m = koffi.decode(messagePtr, T.inbound);
          // Copy everything now: the strings are borrowed for this call only.
          const message = {
            accountId: readStr(koffi, m.account_id),
            peerKind: m.peer_kind === PeerKind.GROUP ? "group" : "direct",
            target: readStr(koffi, m.target),
            senderId: readStr(koffi, m.sender_id),
            chatId: readStr(koffi, m.chat_id),
            messageId: readStr(koffi, m.message_id),
            msgtype: readStr(koffi, m.msgtype),
            text: readStr(koffi, m.text),
            quoteText: readStr(koffi, m.quote_text),
            streamId: readStr(koffi, m.stream_id),
            responseUrl: readStr(koffi, m.response_url),
            aibotId: readStr(koffi, m.aibot_id),
            media: safeJson(readStr(koffi, m.media_json), []),
          };
          return inst.hooks.dispatch(message) === false ? Status.INTERNAL : Status.OK;
        }),
        koffi.pointer(T.cb.dispatch),
      ),
      callback_store_get: koffi.register(
        guard(Status.INTERNAL, (ctx, ns, key, outPtr) => {
          const inst = owner(ctx);
          const value = inst?.hooks.storeGet?.(readStr(koffi, ns), readStr(koffi, key));
          if (value === undefined || value === null) return Status.NOT_FOUND;
          const bytes = Buffer.from(String(value), "utf8");
          let ptr = null;
          if (bytes.length) {
            ptr = koffi.alloc("uint8_t", bytes.length);
            Buffer.from(koffi.view(ptr, bytes.length)).set(bytes);
            allocations.set(String(koffi.address(ptr)), ptr);
          }
          koffi.encode(outPtr, T.buffer, { ptr, len: bytes.length });
          return Status.OK;
        }),
        koffi.pointer(T.cb.store_get),
      ),
      callback_store_put: koffi.register(
        guard(Status.INTERNAL, (ctx, ns, key, value) => {
          const inst = owner(ctx);
          if (!inst?.hooks.storePut) return Status.INTERNAL;
          return inst.hooks.storePut(readStr(koffi, ns), readStr(koffi, key), readStr(koffi, value)) === false
            ? Status.INTERNAL
            : Status.OK;
        }),
        koffi.pointer(T.cb.store_put),
      ),
      callback_store_free: koffi.register(
        guard(undefined, (_ctx, bufPtr) => {
          if (!bufPtr) return;
          const b = koffi.decode(bufPtr, T.buffer);
          if (!b.ptr) return;
          const k = String(koffi.address(b.ptr));
          const ptr = allocations.get(k);
          if (ptr !== undefined) {
            allocations.delete(k);
            koffi.free(ptr);
          }
          koffi.encode(bufPtr, T.buffer, { ptr: null, len: 0 });
        }),
        koffi.pointer(T.cb.store_free),
      ),
      callback_fetch: koffi.register(
        guard(Status.INTERNAL, (ctx, requestPtr) => {
          const inst = owner(ctx);
          if (!inst?.hooks.fetch) return Status.UNSUPPORTED;
          const r = koffi.decode(requestPtr, T.fetchRequest);
          // Copied now (borrowed for this call); the hook starts the request and returns at once.
          const started = inst.hooks.fetch({
            id: r.request_id,
            accountId: readStr(koffi, r.account_id),
            method: readStr(koffi, r.method),
            url: readStr(koffi, r.url),
            contentType: readStr(koffi, r.content_type),
            body: readBytes(koffi, r.body),
            maxResponseBytes: Number(r.max_response_bytes),
            timeoutMs: Number(r.timeout_ms),
          });
          return started === false ? Status.INTERNAL : Status.OK;
        }),
        koffi.pointer(T.cb.fetch),
      ),
      callback_event: koffi.register(
        guard(undefined, (ctx, eventPtr) => {
          const inst = owner(ctx);
          if (!inst?.hooks.event) return;
          const e = koffi.decode(eventPtr, T.event);
          inst.hooks.event({
            accountId: readStr(koffi, e.account_id),
            eventType: readStr(koffi, e.event_type),
            senderId: readStr(koffi, e.sender_id),
            chatId: readStr(koffi, e.chat_id),
            messageId: readStr(koffi, e.message_id),
            event: safeJson(readStr(koffi, e.event_json), {}),
          });
        }),
        koffi.pointer(T.cb.event),
      ),
      callback_now_ms: koffi.register(
        guard(BigInt(Date.now()), (ctx) => {
          const now = owner(ctx)?.hooks.nowMs?.();
          return BigInt(Math.trunc(now ?? Date.now()));
        }),
        koffi.pointer(T.cb.now_ms),
      ),
    };
    return this.callbacks;
  }

  /**
   * Creates an instance from the `channels.wecom` object (or its JSON text).
   * hooks: { log(level, accountId, line), dispatch(message) → boolean, storeGet(ns, key) →
   * string|undefined, storePut(ns, key, value) → boolean, nowMs?() }. Without storeGet/storePut
   * the plugin keeps pairing state in memory.
   */
  createInstance(config, hooks) {
    const { koffi, T, fns } = this;
    const callbacks = this.ensureCallbacks();
    const id = this.nextId++;
    const json = typeof config === "string" ? config : JSON.stringify(config ?? {});
    const host = {
      struct_size: koffi.sizeof(T.hostApi),
      abi_version: ABI_VERSION,
      host_ctx: BigInt(id),
      callback_log: callbacks.callback_log,
      callback_dispatch: callbacks.callback_dispatch,
      callback_store_get: hooks.storeGet ? callbacks.callback_store_get : null,
      callback_store_put: hooks.storePut ? callbacks.callback_store_put : null,
      callback_store_free: hooks.storeGet ? callbacks.callback_store_free : null,
      callback_now_ms: hooks.nowMs ? callbacks.callback_now_ms : null,
      callback_random: null, // RAND_bytes inside the library
      callback_fetch: hooks.fetch ? callbacks.callback_fetch : null,
      callback_event: hooks.event ? callbacks.callback_event : null,
    };
    const instance = new NativeInstance(this, id, hooks);
    // Registered before the call: on_instance_new may already log.
    this.instances.set(id, instance);
    const out = [null];
    const err = this.newError();
    const status = fns.instance_new(host, toStr(json), out, err);
    if (status !== Status.OK || !out[0]) {
      this.instances.delete(id);
      throw new WecomAbiError(status === Status.OK ? Status.INTERNAL : status, err);
    }
    instance.handle = out[0];
    return instance;
  }

  newError() {
    return { struct_size: this.koffi.sizeof(this.T.error) };
  }
}

function safeJson(text, fallback) {
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}

class NativeInstance {
  constructor(library, id, hooks) {
    this.library = library;
    this.id = id;
    this.hooks = hooks;
    this.handle = null;
  }

  get alive() {
    return this.handle !== null;
  }

  #fns() {
    if (!this.handle) throw new WecomAbiError(Status.INVALID_ARGUMENT, { message: "WeCom instance already destroyed" });
    return this.library.fns;
  }

  #takeBuffer(call) {
    const { koffi, fns } = this.library;
    const out = {};
    const err = this.library.newError();
    const status = call(out, err);
    if (status !== Status.OK) {
      if (out.ptr) fns.buffer_free(out);
      throw new WecomAbiError(status, err);
    }
    try {
      return readStr(koffi, out);
    } finally {
      fns.buffer_free(out);
    }
  }

  #json(call) {
    return JSON.parse(this.#takeBuffer(call) || "null");
  }

  routes() {
    const fns = this.#fns();
    return this.#json((out, err) => fns.routes(this.handle, out, err));
  }

  status() {
    const fns = this.#fns();
    return this.#json((out, err) => fns.status(this.handle, out, err));
  }

  probe(accountId = "") {
    const fns = this.#fns();
    return this.#json((out, err) => fns.probe(this.handle, toStr(accountId), out, err));
  }

  pairingList(accountId = "") {
    const fns = this.#fns();
    return this.#json((out, err) => fns.pairing_list(this.handle, toStr(accountId), out, err));
  }

  pairingApprove(accountId, code) {
    const fns = this.#fns();
    return this.#json((out, err) => fns.pairing_approve(this.handle, toStr(accountId), toStr(code), out, err));
  }

  /** { method, path, query, contentType, body (Buffer|string), remoteAddr } → { status, contentType, body: Buffer } */
  handleHttp(request) {
    const fns = this.#fns();
    const { koffi, T } = this.library;
    const req = {
      struct_size: koffi.sizeof(T.httpRequest),
      method: toStr(request.method ?? "GET"),
      path: toStr(request.path ?? "/"),
      query: toStr(request.query ?? ""),
      content_type: toStr(request.contentType ?? ""),
      body: toStr(request.body ?? ""),
      remote_addr: toStr(request.remoteAddr ?? ""),
    };
    const res = { struct_size: koffi.sizeof(T.httpResponse), status: 0, content_type: { ptr: null, len: 0 }, body: { ptr: null, len: 0 } };
    const err = this.library.newError();
    const status = fns.http_request(this.handle, req, res, err);
    try {
      if (status !== Status.OK) throw new WecomAbiError(status, err);
      return {
        status: res.status,
        contentType: readStr(koffi, res.content_type) || "text/plain; charset=utf-8",
        body: readBytes(koffi, res.body),
      };
    } finally {
      if (res.body?.ptr) fns.buffer_free(res.body);
    }
  }

  /** Returns OK, NOT_FOUND (unknown/expired stream) or STREAM_CLOSED; throws on anything else. */
  push(streamId, text, mode = PushMode.APPEND) {
    const fns = this.#fns();
    const err = this.library.newError();
    const status = fns.stream_push(this.handle, toStr(streamId), toStr(text), mode, err);
    if (status !== Status.OK && status !== Status.NOT_FOUND && status !== Status.STREAM_CLOSED) {
      throw new WecomAbiError(status, err);
    }
    return status;
  }

  finish(streamId, kind = FinishKind.DONE, text = "") {
    const fns = this.#fns();
    const err = this.library.newError();
    const status = fns.stream_finish(this.handle, toStr(streamId), kind, toStr(text), err);
    if (status !== Status.OK && status !== Status.NOT_FOUND && status !== Status.STREAM_CLOSED) {
      throw new WecomAbiError(status, err);
    }
    return status;
  }

  /**
   * The result of a hooks.fetch request (exactly once per started request, never from inside the
   * hook itself). outcome: FetchOutcome; body: Buffer of the answer. Returns the status
   * (NOT_FOUND when the library no longer waits for it).
   */
  fetchDone(id, outcome, httpStatus, body, errorText = "") {
    if (!this.handle) return Status.NOT_FOUND;
    const err = this.library.newError();
    return this.library.fns.fetch_done(this.handle, id, outcome, httpStatus | 0, toStr(body ?? ""), toStr(errorText), err);
  }

  /** An image (Buffer) for the stream's finishing reply: { ok } or { ok: false, error } (send a link instead). */
  attachImage(streamId, bytes) {
    const fns = this.#fns();
    const err = this.library.newError();
    const status = fns.stream_attach_image(this.handle, toStr(streamId), toStr(bytes), err);
    if (status === Status.OK) return { ok: true };
    return { ok: false, status: StatusName[status], error: err.message || StatusName[status] };
  }

  /** Always { ok: false, error } for WeCom bots; the text comes from the library. */
  sendText(accountId, target, text) {
    const fns = this.#fns();
    const err = this.library.newError();
    const status = fns.send_text(this.handle, toStr(accountId), toStr(target), toStr(text), err);
    if (status === Status.OK) return { ok: true };
    return { ok: false, status: StatusName[status], error: err.message || StatusName[status] };
  }

  tick() {
    if (this.handle) this.library.fns.tick(this.handle);
  }

  destroy() {
    if (!this.handle) return;
    const handle = this.handle;
    this.handle = null;
    this.library.fns.instance_destroy(handle);
    this.library.instances.delete(this.id);
  }
}

module.exports = {
  ABI_VERSION,
  Status,
  StatusName,
  LogLevel,
  PushMode,
  FinishKind,
  FetchOutcome,
  WecomLoadError,
  WecomAbiError,
  defaultLibraryPath,
  loadLibrary,
  platformKey,
};
