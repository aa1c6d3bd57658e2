/*
 * clawdbot_wecom.h — the C ABI of libclawdbot_wecom.so, the WeCom channel for Clawdbot.
 *
 * This is the only public header. A host (the reference gateway, the Node bridge, or anything
 * else that can dlopen a shared library) talks to the plugin exclusively through it.
 *
 * ---------------------------------------------------------------------------------------------
 * Naming
 *   - `cwc_` / `CWC_`             types, enums and macros of this ABI.
 *   - `clawdbot_wecom_*`          the two exported symbols (process-unique, long prefix).
 *   - `on_<event>`                a function of the plugin table: the HOST calls the PLUGIN.
 *   - `callback_<action>`         a function of the host table:   the PLUGIN calls the HOST.
 *
 * Loading sequence (a host MUST follow it)
 *   1. dlopen("libclawdbot_wecom.so", RTLD_NOW | RTLD_LOCAL).
 *   2. dlsym("clawdbot_wecom_abi_version") and compare its major with CWC_ABI_VERSION_MAJOR
 *      (optional fast check; step 3 performs the same check and reports it as an error).
 *   3. dlsym("clawdbot_wecom_plugin_init"), fill a cwc_plugin_api with struct_size =
 *      sizeof(cwc_plugin_api) and call it with CWC_ABI_VERSION. On CWC_OK the table is filled.
 *      The plugin never writes past the host's struct_size, and a plugin whose major differs
 *      returns CWC_ERR_ABI_MISMATCH with a message naming both versions.
 *   4. on_instance_new(...) with the host callback table and the `channels.wecom` config JSON.
 *   5. Serve: on_http_request from any number of threads; on_stream_push / on_stream_finish from
 *      any thread; on_tick about once a second.
 *   6. on_instance_destroy exactly once, after every other call on that instance has returned.
 *   7. dlclose only after every instance has been destroyed.
 *
 * Versioning
 *   CWC_ABI_VERSION packs major << 16 | minor. A minor bump only appends fields at the end of
 *   tables and structs; every table and every struct that crosses the boundary starts with
 *   `struct_size`, and neither side reads a field that lies beyond the other side's struct_size.
 *   Incompatible changes bump the major; existing signatures are never edited.
 *
 * Ownership (every declaration below has an OWNERSHIP line)
 *   - Pointers passed INTO a call are borrowed for the duration of that call only. Copy what you
 *     keep. This holds in both directions (host → plugin and plugin → host callbacks).
 *   - Buffers the plugin RETURNS (cwc_buffer) belong to the caller, who releases each one exactly
 *     once with plugin->on_buffer_free. A zeroed cwc_buffer may be freed too (no-op).
 *   - Strings are cwc_str {ptr, len}: UTF-8, not NUL-terminated, ptr may be NULL when len == 0.
 *   - cwc_error is caller-owned storage that the plugin fills on failure.
 *
 * Threads
 *   - on_http_request, on_stream_push, on_stream_finish, on_status, on_probe, on_send_text,
 *     on_routes and on_tick are thread-safe: any thread, concurrently, on one instance.
 *   - No plugin function ever waits for the agent. on_http_request answers from the stream table
 *     at once (a placeholder "1" when the agent has produced nothing yet).
 *   - Host callbacks may be invoked on any thread that is currently inside a plugin call
 *     (on_http_request, on_tick, on_stream_finish or on_fetch_done); the plugin never starts
 *     threads of its own and never calls the host from anywhere else. Host callbacks
 *     MUST NOT call back into the same instance (no re-entrancy), and MUST return promptly:
 *     callback_dispatch queues the message; it does not run the agent in place.
 *   - on_instance_destroy MUST NOT run concurrently with any other call on that instance.
 *
 * Errors
 *   Every fallible function returns cwc_status and, on failure, fills the caller's cwc_error
 *   (an HTTP-ish status, the WeCom SDK code for logs where one applies, and a message that never
 *   contains secrets). No C++ exception ever crosses this boundary.
 */
#ifndef CLAWDBOT_WECOM_H
#define CLAWDBOT_WECOM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CWC_EXPORT __declspec(dllexport)
#else
#define CWC_EXPORT __attribute__((visibility("default")))
#endif

#define CWC_ABI_VERSION_MAJOR 1u
#define CWC_ABI_VERSION_MINOR 1u
#define CWC_ABI_VERSION ((CWC_ABI_VERSION_MAJOR << 16) | CWC_ABI_VERSION_MINOR)
#define CWC_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define CWC_ABI_MINOR_OF(v) ((uint32_t)(v)&0xffffu)

/* ---------------------------------------------------------------------------------------------
 * Basic types
 * ------------------------------------------------------------------------------------------- */

/* A borrowed UTF-8 string. OWNERSHIP: never owns; valid for the call it is passed in. */
typedef struct cwc_str {
  const char* ptr;
  size_t len;
} cwc_str;

/* A plugin-allocated byte buffer returned to the host.
 * OWNERSHIP: the host owns it after the call and releases it with plugin->on_buffer_free. */
typedef struct cwc_buffer {
  char* ptr;
  size_t len;
} cwc_buffer;

typedef enum cwc_status {
  CWC_OK = 0,
  CWC_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a struct_size too small, an unknown enum   */
  CWC_ERR_ABI_MISMATCH = 2,     /* the other side's major ABI version is not ours             */
  CWC_ERR_CONFIG = 3,           /* channels.wecom rejected; message names the key and the fix */
  CWC_ERR_NOT_FOUND = 4,        /* unknown stream id or account id                            */
  CWC_ERR_UNSUPPORTED = 5,      /* the operation cannot exist for WeCom bots (e.g. sendText)  */
  CWC_ERR_STREAM_CLOSED = 6,    /* the stream was already finished or has expired             */
  CWC_ERR_INTERNAL = 7          /* a bug or resource exhaustion; message says which           */
} cwc_status;

/* Caller-owned error storage. OWNERSHIP: the caller's; the plugin only writes into it. */
typedef struct cwc_error {
  size_t struct_size;  /* set by the caller: sizeof(cwc_error) */
  int http_status;     /* the HTTP status this error maps to (400, 401, 404, 500, ...)    */
  int wecom_code;      /* the official SDK code (-40001 ... -40011) or 0 when none applies */
  char message[512];   /* NUL-terminated; no token, key or decrypted payload ever appears  */
} cwc_error;

typedef enum cwc_log_level {
  CWC_LOG_TRACE = 0,
  CWC_LOG_DEBUG = 1,
  CWC_LOG_INFO = 2,
  CWC_LOG_WARN = 3,
  CWC_LOG_ERROR = 4
} cwc_log_level;

typedef enum cwc_peer_kind {
  CWC_PEER_DIRECT = 0, /* a single chat: target "wecom:<userid>"       */
  CWC_PEER_GROUP = 1   /* a group chat:  target "wecom:group:<chatid>" */
} cwc_peer_kind;

/* ---------------------------------------------------------------------------------------------
 * Inbound message handed to the host's agent router
 * ------------------------------------------------------------------------------------------- */

/* One user message, delivered exactly once per WeCom msgid (retries are deduplicated).
 * OWNERSHIP: every field is borrowed for the duration of callback_dispatch; copy what you keep. */
typedef struct cwc_inbound_message {
  size_t struct_size;
  cwc_str account_id;   /* the channels.wecom account that received it ("default" if single) */
  cwc_peer_kind peer_kind;
  cwc_str target;       /* "wecom:<userid>" or "wecom:group:<chatid>": the session peer       */
  cwc_str sender_id;    /* from.userid                                                        */
  cwc_str chat_id;      /* chatid for groups, empty for single chats                          */
  cwc_str message_id;   /* WeCom msgid                                                        */
  cwc_str msgtype;      /* text | mixed | image | voice | file                                */
  cwc_str text;         /* what the user wrote (voice: WeCom's transcript; mixed: its texts)  */
  cwc_str quote_text;   /* the quoted message's text, empty if none                           */
  cwc_str stream_id;    /* pass to on_stream_push / on_stream_finish                          */
  cwc_str response_url; /* WeCom's one-shot fallback URL (the plugin uses it; informational)  */
  cwc_str aibot_id;     /* aibotid                                                            */
  cwc_str media_json;   /* JSON array, "[]" if none. With callback_fetch (1.1) the plugin has
                           downloaded, decrypted and checked each item:
                           [{"kind":"image","path":"/…/s…-1.png","mime":"image/png","bytes":N}];
                           without it: [{"kind":"image","url":"https://…"}] (expires in ~5 min) */
} cwc_inbound_message;

/* ABI 1.1: one outbound HTTP request the plugin asks the host to perform (callback_fetch).
 * OWNERSHIP: every field is borrowed for the duration of callback_fetch; copy what you keep. */
typedef struct cwc_fetch_request {
  size_t struct_size;
  uint64_t request_id;        /* pass back to on_fetch_done                                    */
  cwc_str account_id;         /* for the host's logs                                           */
  cwc_str method;             /* "GET" (media) or "POST" (response_url)                        */
  cwc_str url;                /* http:// or https://; never logged by the plugin (it may carry a one-time code) */
  cwc_str content_type;       /* POST only, e.g. "application/json"                            */
  cwc_str body;               /* POST only                                                      */
  uint64_t max_response_bytes;/* abandon the download beyond this many body bytes              */
  uint32_t timeout_ms;        /* for the whole request                                          */
} cwc_fetch_request;

typedef enum cwc_fetch_outcome {
  CWC_FETCH_OK = 0,        /* a complete HTTP answer (any status code)               */
  CWC_FETCH_FAILED = 1,    /* no HTTP answer: DNS, connect, TLS, reset; see error text */
  CWC_FETCH_TIMEOUT = 2,   /* timeout_ms elapsed                                      */
  CWC_FETCH_TOO_LARGE = 3  /* the body exceeded max_response_bytes                    */
} cwc_fetch_outcome;

/* ABI 1.1: a WeCom event for the host (callback_event). Delivered once per WeCom msgid.
 * OWNERSHIP: every field is borrowed for the duration of callback_event. */
typedef struct cwc_event {
  size_t struct_size;
  cwc_str account_id;
  cwc_str event_type;   /* "template_card_event", "feedback_event", ...                       */
  cwc_str sender_id;    /* from.userid                                                         */
  cwc_str chat_id;      /* empty for single chats                                              */
  cwc_str message_id;   /* WeCom msgid                                                         */
  cwc_str event_json;   /* the event's own object as JSON, e.g. {"eventtype":"feedback_event",
                           "feedback_event":{...}}; "{}" when the callback carried none         */
} cwc_event;

/* ---------------------------------------------------------------------------------------------
 * Host callback table (the plugin calls the host)
 * ------------------------------------------------------------------------------------------- */

typedef struct cwc_host_api {
  size_t struct_size;    /* sizeof(cwc_host_api) as the host compiled it */
  uint32_t abi_version;  /* CWC_ABI_VERSION as the host compiled it      */
  void* host_ctx;        /* passed back verbatim as the first argument of every callback */

  /* One log line. REQUIRED. `account_id` may be empty (instance-wide events).
   * OWNERSHIP: both strings borrowed for the call. */
  void (*callback_log)(void* host_ctx, cwc_log_level level, cwc_str account_id, cwc_str line);

  /* A new inbound message for the agent router. REQUIRED. MUST NOT block: queue it and return.
   * Return CWC_OK when queued; any other status makes the plugin finish the stream with an error
   * text for the user. OWNERSHIP: `message` and everything it points to are borrowed. */
  cwc_status (*callback_dispatch)(void* host_ctx, const cwc_inbound_message* message);

  /* Key/value store for pairing requests and allow-from lists (namespace e.g. "allowFrom:<account>").
   * OPTIONAL (NULL → an in-memory store that lives as long as the instance).
   * store_get: on CWC_OK *out_value is allocated by the host with `callback_alloc` semantics below
   * and written into out (plugin copies and then calls callback_store_free on it).
   * CWC_ERR_NOT_FOUND when the key is absent. MUST NOT block on the network.
   * OWNERSHIP: inputs borrowed; *out buffer host-owned until callback_store_free. */
  cwc_status (*callback_store_get)(void* host_ctx, cwc_str ns, cwc_str key, cwc_buffer* out);
  cwc_status (*callback_store_put)(void* host_ctx, cwc_str ns, cwc_str key, cwc_str value);
  void (*callback_store_free)(void* host_ctx, cwc_buffer* buffer);

  /* Wall clock in milliseconds since the Unix epoch. OPTIONAL (NULL → system clock).
   * Tests inject a fake clock here to drive TTLs and timestamps. */
  int64_t (*callback_now_ms)(void* host_ctx);

  /* Fill `len` bytes with cryptographically secure randomness. OPTIONAL (NULL → RAND_bytes).
   * Return 0 on success. Tests inject fixed bytes to reproduce vectors. */
  int (*callback_random)(void* host_ctx, uint8_t* out, size_t len);

  /* ---- ABI 1.1 (read only when struct_size covers them) ---- */

  /* Perform one outbound HTTP(S) request for the plugin: a media download (GET of a WeCom media
   * url) or the response_url fallback (POST of a JSON body). OPTIONAL (NULL → media reaches the
   * agent as bare urls, and an answer that cannot be shown in the stream is logged as lost).
   * MUST NOT block: start the request and return CWC_OK, then call plugin->on_fetch_done exactly
   * once with the same request_id, also on failure — from another thread or later on this one,
   * never from inside this callback (that would re-enter the instance). A response body longer
   * than max_response_bytes must be abandoned and reported as CWC_FETCH_TOO_LARGE; a request
   * that takes longer than timeout_ms as CWC_FETCH_TIMEOUT.
   * Any non-OK return means "not started" (on_fetch_done is not called).
   * OWNERSHIP: `request` and everything it points to are borrowed for this call only. */
  cwc_status (*callback_fetch)(void* host_ctx, const struct cwc_fetch_request* request);

  /* A WeCom event that is not a message (template_card_event, feedback_event, ...), for hosts that
   * act on them. OPTIONAL (NULL → only logged). MUST NOT block.
   * OWNERSHIP: `event` and everything it points to are borrowed for this call only. */
  void (*callback_event)(void* host_ctx, const struct cwc_event* event);
} cwc_host_api;

/* ---------------------------------------------------------------------------------------------
 * HTTP request / response
 * ------------------------------------------------------------------------------------------- */

/* OWNERSHIP: every field borrowed for the duration of on_http_request. */
typedef struct cwc_http_request {
  size_t struct_size;
  cwc_str method;        /* "GET", "POST", ...                                            */
  cwc_str path;          /* decoded path without query, e.g. "/wecom"                     */
  cwc_str query;         /* raw query string without '?', still percent-encoded            */
  cwc_str content_type;  /* the Content-Type header, empty if absent                       */
  cwc_str body;          /* raw body bytes                                                 */
  cwc_str remote_addr;   /* for logs only; may be empty                                    */
} cwc_http_request;

/* Filled by on_http_request. OWNERSHIP: `content_type` points to static storage in the plugin
 * (valid until dlclose); `body` is owned by the caller and released with on_buffer_free. */
typedef struct cwc_http_response {
  size_t struct_size;
  int status;            /* 200, 400, 401, 404, 405, 413, 503, ...                 */
  cwc_str content_type;  /* "text/plain; charset=utf-8", "application/xml", ...    */
  cwc_buffer body;       /* may be empty: WeCom reads an empty 200 as "no reply"    */
} cwc_http_response;

typedef enum cwc_push_mode {
  CWC_PUSH_APPEND = 0,  /* add a block after what the stream holds (block streaming)       */
  CWC_PUSH_REPLACE = 1  /* the text is the whole answer so far (cumulative partial reply)  */
} cwc_push_mode;

typedef enum cwc_finish_kind {
  CWC_FINISH_DONE = 0,   /* the agent finished; `text` (optional) is appended first            */
  CWC_FINISH_FAILED = 1  /* the agent failed; `text` is shown to the user as the final answer  */
} cwc_finish_kind;

/* Opaque plugin instance: one per `channels.wecom` configuration. */
typedef struct cwc_instance cwc_instance;

/* ---------------------------------------------------------------------------------------------
 * Plugin operation table (the host calls the plugin)
 * ------------------------------------------------------------------------------------------- */

typedef struct cwc_plugin_api {
  size_t struct_size;    /* set by the HOST before init: sizeof(cwc_plugin_api) as it knows it */
  uint32_t abi_version;  /* written by the plugin: its CWC_ABI_VERSION                        */
  cwc_str plugin_version;/* written by the plugin: e.g. "0.1.0" (static storage)              */

  /* Create an instance from the JSON of `channels.wecom` (comments not allowed here: the host
   * parsed its own file). Validation is complete here: every later call can trust the config.
   * On failure err->message names the key and the fix, e.g.
   *   "channels.wecom.encodingAESKey must be 43 characters (got 42)".
   * OWNERSHIP: `host` is copied (the table, not host_ctx's target, which MUST outlive the
   * instance); `config_json` borrowed; *out_instance owned by the host until on_instance_destroy. */
  cwc_status (*on_instance_new)(const cwc_host_api* host, cwc_str config_json,
                                cwc_instance** out_instance, cwc_error* err);

  /* Destroy an instance: open streams are dropped, keys are wiped. Exactly once per instance,
   * after all other calls on it returned. Stream ids held by the host become invalid. */
  void (*on_instance_destroy)(cwc_instance* instance);

  /* The HTTP routes this instance wants, as JSON:
   *   [{"accountId":"default","path":"/wecom","methods":["GET","POST"]}, ...]
   * The host routes exact-path matches (and, if it likes, "/wecom/" with a trailing slash) here.
   * OWNERSHIP: *out owned by the caller (on_buffer_free). */
  cwc_status (*on_routes)(cwc_instance* instance, cwc_buffer* out_json, cwc_error* err);

  /* Handle one webhook request. Always fills *response (also for protocol errors: those are a
   * CWC_OK return with status 4xx and a short text body); a non-OK return means the host should
   * answer 500 with err->message. Never blocks on the agent.
   * OWNERSHIP: request borrowed; response->body owned by the caller (on_buffer_free). */
  cwc_status (*on_http_request)(cwc_instance* instance, const cwc_http_request* request,
                                cwc_http_response* response, cwc_error* err);

  /* Add agent output to a stream (any thread). CWC_ERR_NOT_FOUND for an unknown or expired id,
   * CWC_ERR_STREAM_CLOSED after finish. OWNERSHIP: strings borrowed. */
  cwc_status (*on_stream_push)(cwc_instance* instance, cwc_str stream_id, cwc_str text,
                               cwc_push_mode mode, cwc_error* err);

  /* Mark a stream finished (DONE) or failed (FAILED, `text` becomes the visible answer).
   * The next refresh answers finish:true. OWNERSHIP: strings borrowed. */
  cwc_status (*on_stream_finish)(cwc_instance* instance, cwc_str stream_id,
                                 cwc_finish_kind kind, cwc_str text, cwc_error* err);

  /* Status of every account as JSON (configured, webhookPath, keyValid, lastInboundAt, lastError,
   * counters, open streams). OWNERSHIP: *out owned by the caller (on_buffer_free). */
  cwc_status (*on_status)(cwc_instance* instance, cwc_buffer* out_json, cwc_error* err);

  /* Self-test of one account (empty id → every account): key decodes to 32 bytes, an encrypt /
   * decrypt round trip, and a signed VerifyURL request answered through the real request path.
   * The JSON also carries a ready-made signed VerifyURL request ("request": {method, path,
   * query}, "expectBody") so a host can repeat it over the network against its public URL.
   * OWNERSHIP: *out owned by the caller (on_buffer_free). */
  cwc_status (*on_probe)(cwc_instance* instance, cwc_str account_id, cwc_buffer* out_json,
                         cwc_error* err);

  /* Proactive send. WeCom intelligent bots are passive-reply only: always CWC_ERR_UNSUPPORTED
   * with a message saying so (kept in the ABI so hosts get a clear answer, not a crash). */
  cwc_status (*on_send_text)(cwc_instance* instance, cwc_str account_id, cwc_str target,
                             cwc_str text, cwc_error* err);

  /* Housekeeping, about once a second from any thread: expires streams and msgid records past
   * their TTL and logs streams whose first reply went out but no refresh came back.
   * OWNERSHIP: none. */
  void (*on_tick)(cwc_instance* instance);

  /* Release a buffer returned by any function above. Safe on a zeroed buffer. */
  void (*on_buffer_free)(cwc_buffer* buffer);

  /* Pending DM pairing requests (dm.policy "pairing") of one account, or of all accounts when
   * `account_id` is empty, as JSON:
   *   {"channel":"wecom","requests":[{"accountId","code","userId","createdAt","expiresAt"}]}
   * Read from the host store (callback_store_get), so a CLI process sees what the gateway wrote.
   * OWNERSHIP: *out owned by the caller (on_buffer_free). */
  cwc_status (*on_pairing_list)(cwc_instance* instance, cwc_str account_id, cwc_buffer* out_json,
                                cwc_error* err);

  /* Approve a pairing code (case-insensitive; any account when `account_id` is empty): the user
   * joins the account's allow-from store. Out: {"accountId","userId"}. CWC_ERR_NOT_FOUND for an
   * unknown or expired code. OWNERSHIP: *out owned by the caller (on_buffer_free). */
  cwc_status (*on_pairing_approve)(cwc_instance* instance, cwc_str account_id, cwc_str code,
                                   cwc_buffer* out_json, cwc_error* err);

  /* ---- ABI 1.1 (present when the host's struct_size covers them) ---- */

  /* The result of a callback_fetch request: exactly once per request the host started, from any
   * thread. `http_status` is the HTTP status for CWC_FETCH_OK, else 0; `body` the (complete)
   * response body for CWC_FETCH_OK; `error_text` a short cause otherwise. The plugin decrypts and
   * checks media here and may call callback_dispatch / callback_log from inside this call.
   * CWC_ERR_NOT_FOUND for an unknown request id (e.g. the instance forgot it after a timeout).
   * OWNERSHIP: strings borrowed. */
  cwc_status (*on_fetch_done)(cwc_instance* instance, uint64_t request_id, cwc_fetch_outcome outcome,
                              int http_status, cwc_str body, cwc_str error_text, cwc_error* err);

  /* Attach an image the agent produced to a stream: it goes out as a msg_item (base64 + md5) with
   * the stream's finishing reply. JPEG or PNG, at most 10 MiB, at most 10 per stream; anything else
   * is CWC_ERR_INVALID_ARGUMENT with the reason, and the host should send it as a link instead.
   * CWC_ERR_NOT_FOUND / CWC_ERR_STREAM_CLOSED as for on_stream_push.
   * OWNERSHIP: `bytes` borrowed (copied). */
  cwc_status (*on_stream_attach_image)(cwc_instance* instance, cwc_str stream_id, cwc_str bytes,
                                       cwc_error* err);
} cwc_plugin_api;

/* ---------------------------------------------------------------------------------------------
 * Exported symbols
 * ------------------------------------------------------------------------------------------- */

/* The plugin's CWC_ABI_VERSION. Never fails. */
CWC_EXPORT uint32_t clawdbot_wecom_abi_version(void);

/* Fill `out_api` (whose struct_size the host has set) for a host built against
 * `host_abi_version`. Returns CWC_ERR_ABI_MISMATCH when the majors differ and
 * CWC_ERR_INVALID_ARGUMENT when out_api is NULL or smaller than the version-1.0 table.
 * OWNERSHIP: out_api and err are host-owned storage; function pointers stay valid until dlclose. */
CWC_EXPORT cwc_status clawdbot_wecom_plugin_init(uint32_t host_abi_version,
                                                 cwc_plugin_api* out_api, cwc_error* err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CLAWDBOT_WECOM_H */
