// End-to-end test of `unigemma serve` with the official OpenAI Node client (pinned in package.json).
// Starts the server on a free port against a tiny random-weight model with the real tokenizer and runs
// the acceptance list: chat (plain, streamed, usage), tool-call round trip, image/audio/video parts,
// placeholder text in re-sent replies, stop sequences, seeded reproducibility, n > 1, 32 concurrent
// streams, bad input of every kind, a client that disconnects mid-stream, KV back to idle (no leak) after
// disconnects, and SIGTERM. Exit code 0 = all passed.
//
// node e2e.mjs --bin build/release/unigemma --tokenizer build/test_assets/tokenizer/tokenizer.json
//              --media tests/data/media [--filter NAME]
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
for (const k of ["bin", "tokenizer", "media"])
  if (!args[k]) { console.error(`usage: node e2e.mjs --bin B --tokenizer T --media DIR (missing --${k})`); process.exit(2); }

const MODEL = "gemma-4-12b-it";
const API_KEY = "e2e-test-key";
const MAX_BODY = 8 << 20;
const work = mkdtempSync(join(tmpdir(), "unigemma-e2e-"));
let server, baseURL, serverLog = "";

function assert(cond, msg) { if (!cond) throw new Error("assertion failed: " + msg); }
function eq(a, b, msg) { assert(JSON.stringify(a) === JSON.stringify(b), `${msg}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`); }

async function startServer() {
  execFileSync(args.bin, ["init-random", "--preset", "tiny", "--seed", "3", "--out", join(work, "tiny"),
                          "--tokenizer", args.tokenizer], { stdio: "pipe" });
  server = spawn(args.bin, ["serve", "--model", join(work, "tiny"), "--port", "0", "--api-key", API_KEY,
                            "--max-body-bytes", String(MAX_BODY), "--max-running", "16", "--max-queue", "64",
                            "--shutdown-grace-s", "5"], { stdio: ["ignore", "ignore", "pipe"] });
  server.stderr.on("data", d => { serverLog += d; });
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const m = serverLog.match(/on (http:\/\/127\.0\.0\.1:\d+\/v1)/);
    if (m) { baseURL = m[1]; return; }
    if (server.exitCode !== null) break;
    await new Promise(r => setTimeout(r, 50));
  }
  throw new Error("server did not start:\n" + serverLog);
}

const client = () => new OpenAI({ baseURL, apiKey: API_KEY, maxRetries: 0, timeout: 120_000 });
const user = text => [{ role: "user", content: text }];
const b64 = file => readFileSync(join(args.media, file)).toString("base64");

// Expects the call to fail with an OpenAI error of this status; returns the error.
async function expectStatus(status, fn, fragment) {
  try {
    await fn();
  } catch (e) {
    assert(e.status === status, `expected HTTP ${status}, got ${e.status}: ${e.message}`);
    if (fragment) assert(String(e.message).includes(fragment), `error "${e.message}" lacks "${fragment}"`);
    return e;
  }
  throw new Error(`expected HTTP ${status}, the call succeeded`);
}

async function raw(body, headers = {}) {
  const r = await fetch(baseURL + "/chat/completions", {
    method: "POST", body, headers: { "Content-Type": "application/json", Authorization: `Bearer ${API_KEY}`, ...headers } });
  return { status: r.status, json: await r.json().catch(() => null) };
}

// The unlabelled samples of GET /metrics as { name: number }.
async function metrics() {
  const text = await (await fetch(baseURL.replace(/\/v1$/, "/metrics"), { headers: { Authorization: `Bearer ${API_KEY}` } })).text();
  const out = {};
  for (const m of text.matchAll(/^(unigemma_[a-z_]+) (\S+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

// Polls /metrics until nothing runs, waits or streams (or `ms` pass); returns the last sample.
async function idleMetrics(ms = 10_000) {
  const deadline = Date.now() + ms;
  let m;
  do {
    m = await metrics();
    if (m.unigemma_sequences_running === 0 && m.unigemma_queue_depth === 0 && m.unigemma_active_streams === 0) return m;
    await new Promise(r => setTimeout(r, 50));
  } while (Date.now() < deadline);
  return m;
}

async function streamChat(params) {
  const stream = await client().chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  const out = { content: {}, finish: {}, usage: null, chunks: 0 };
  for await (const chunk of stream) {
    out.chunks++;
    if (chunk.usage) out.usage = chunk.usage;
    for (const c of chunk.choices) {
      out.content[c.index] = (out.content[c.index] ?? "") + (c.delta?.content ?? "");
      if (c.finish_reason) out.finish[c.index] = c.finish_reason;
    }
  }
  return out;
}

const tests = {
  async models() {
    const list = await client().models.list();
    eq(list.data.map(m => m.id), [MODEL], "model ids");
    const bad = new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 });
    await expectStatus(401, () => bad.models.list());
  },

  async chatAndUsage() {
    const r = await client().chat.completions.create({ model: MODEL, messages: user("Hello there"), max_tokens: 7, seed: 1 });
    assert(r.object === "chat.completion" && r.id.startsWith("chatcmpl-"), "object/id");
    const c = r.choices[0];
    eq(c.message.role, "assistant", "role");
    assert(typeof c.message.content === "string", "content is a string");
    assert(["length", "stop"].includes(c.finish_reason), "finish_reason " + c.finish_reason);
    assert(r.usage.prompt_tokens > 5, "prompt tokens");
    assert(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 7, "completion tokens");
    eq(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens, "total tokens");
  },

  async streamingMatchesNonStreaming() {
    const params = { model: MODEL, messages: user("Tell me a story"), max_tokens: 12, seed: 42, temperature: 0.8 };
    const a = await client().chat.completions.create(params);
    const s = await streamChat(params);
    eq(s.content[0], a.choices[0].message.content, "streamed text equals the non-streamed text (same seed)");
    eq(s.finish[0], a.choices[0].finish_reason, "finish reason");
    eq(s.usage.completion_tokens, a.usage.completion_tokens, "usage in the final chunk");
    eq(s.usage.prompt_tokens, a.usage.prompt_tokens, "prompt tokens in the final chunk");
  },

  async seededSamplingIsReproducible() {
    const params = { model: MODEL, messages: user("Pick a number"), max_tokens: 10, seed: 1234, temperature: 1 };
    const a = await client().chat.completions.create(params);
    const b = await client().chat.completions.create(params);
    eq(a.choices[0].message.content, b.choices[0].message.content, "same seed, same text");
    const c = await client().chat.completions.create({ ...params, seed: 999 });
    assert(c.choices[0].message.content !== a.choices[0].message.content, "another seed, another text");
  },

  async nChoices() {
    const r = await client().chat.completions.create({ model: MODEL, messages: user("Hi"), max_tokens: 6, n: 3, seed: 5 });
    eq(r.choices.map(c => c.index), [0, 1, 2], "choice indices");
    assert(new Set(r.choices.map(c => c.message.content)).size > 1, "choices differ");
    const s = await streamChat({ model: MODEL, messages: user("Hi"), max_tokens: 6, n: 2, seed: 5 });
    eq(Object.keys(s.finish).length, 2, "two streamed choices finished");
  },

  async stopSequences() {
    const params = { model: MODEL, messages: user("Count"), max_tokens: 16, seed: 77 };
    const full = (await client().chat.completions.create(params)).choices[0].message.content;
    assert(full.length > 6, "long enough output: " + full);
    const stop = full.slice(3, 5).trim() || full.slice(3, 5);
    const cut = full.indexOf(stop);
    const r = await client().chat.completions.create({ ...params, stop: [stop] });
    eq(r.choices[0].message.content, full.slice(0, cut).trim(), `text before the stop "${stop}"`);
    eq(r.choices[0].finish_reason, "stop", "finish reason");
  },

  async toolCallRoundTrip() {
    const tools = [{ type: "function", function: { name: "get_weather", description: "Weather of a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
    // The random model cannot be relied on to call a tool; the conversation with a call and its result
    // must be accepted and answered (the response-side parsing is unit-tested with a scripted engine).
    const messages = [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function",
        function: { name: "get_weather", arguments: JSON.stringify({ city: "Paris" }) } }] },
      { role: "tool", tool_call_id: "call_1", content: JSON.stringify({ temp: 18 }) },
    ];
    const r = await client().chat.completions.create({ model: MODEL, messages, tools, max_tokens: 5 });
    assert(typeof r.choices[0].message.content === "string" || r.choices[0].message.tool_calls, "an answer");
    const forced = await client().chat.completions.create({ model: MODEL, messages: user("Weather?"), tools, max_tokens: 5,
      tool_choice: { type: "function", function: { name: "get_weather" } } });
    assert(!(forced.choices[0].message.content ?? "").includes("<|channel>"), "no thought markup in content");
    await expectStatus(400, () => client().chat.completions.create({ model: MODEL, messages: user("x"), tools,
      tool_choice: { type: "function", function: { name: "nope" } } }), "not one of the declared tools");
  },

  async thinkingIsSeparate() {
    const r = await client().chat.completions.create({ model: MODEL, messages: user("Think"), max_tokens: 8, seed: 3,
      reasoning_effort: "high" });
    const m = r.choices[0].message;
    assert(!(m.content ?? "").includes("<|channel>") && !(m.content ?? "").includes("<channel|>"), "no thought markup");
  },

  async imageAndAudioParts() {
    const text = await client().chat.completions.create({ model: MODEL, messages: user("Describe"), max_tokens: 2 });
    const content = [
      { type: "text", text: "Describe" },
      { type: "image_url", image_url: { url: `data:image/png;base64,${b64("gradient.png")}`, detail: "low" } },
      { type: "input_audio", input_audio: { data: b64("tone_16k_i16.wav"), format: "wav" } },
    ];
    const r = await client().chat.completions.create({ model: MODEL, messages: [{ role: "user", content }], max_tokens: 2 });
    assert(r.usage.prompt_tokens > text.usage.prompt_tokens + 70, `media soft tokens counted (${r.usage.prompt_tokens})`);
    if (existsSync(join(args.media, "video_mp4v.mp4"))) {
      const v = await client().chat.completions.create({ model: MODEL, max_tokens: 2, messages: [{ role: "user", content: [
        { type: "video_url", video_url: { url: `data:video/mp4;base64,${b64("video_mp4v.mp4")}` } }] }] });
      assert(v.usage.prompt_tokens > text.usage.prompt_tokens, "video soft tokens counted");
    }
  },

  async textCompletions() {
    const r = await client().completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 5, seed: 1 });
    assert(r.object === "text_completion" && typeof r.choices[0].text === "string", "text completion");
    assert(r.usage.completion_tokens <= 5, "usage");
    // A placeholder string in a raw prompt is that literal token: no media slot, no 400.
    const p = await client().completions.create({ model: MODEL, prompt: "Once upon <|image|> a time", max_tokens: 2 });
    const extra = p.usage.prompt_tokens - r.usage.prompt_tokens;
    assert(extra >= 1 && extra <= 3, `the placeholder is a literal token (${extra} more prompt tokens)`);
  },

  async jsonSchemaOutput() {
    // The tiny random model writes garbage; constrained decoding makes it valid JSON of the schema.
    const schema = { type: "object", properties: { n: { type: "integer" }, ok: { type: "boolean" } },
                     required: ["n", "ok"], additionalProperties: false };
    const r = await client().chat.completions.create({ model: MODEL, messages: user("Give me JSON"), max_tokens: 300,
      temperature: 0, response_format: { type: "json_schema", json_schema: { name: "t", schema, strict: true } } });
    const choice = r.choices[0];
    if (choice.finish_reason === "stop") {
      const v = JSON.parse(choice.message.content);
      assert(Number.isInteger(v.n) && typeof v.ok === "boolean" && Object.keys(v).length === 2,
             "schema-valid JSON: " + choice.message.content);
    } else {
      eq(choice.finish_reason, "length", "a JSON reply ends by stop or length");
    }
  },

  async concurrentStreams() {
    const runs = await Promise.all(Array.from({ length: 32 }, (_, i) =>
      streamChat({ model: MODEL, messages: user(`Client ${i}`), max_tokens: 8, seed: i })));
    for (const s of runs) {
      assert(["length", "stop"].includes(s.finish[0]), "every stream finished: " + JSON.stringify(s.finish));
      assert(s.usage && s.usage.completion_tokens >= 1, "every stream has usage");
    }
  },

  async badInput() {
    const c = client();
    let r = await raw("{\"model\": ");
    eq(r.status, 400, "malformed JSON");
    assert(r.json?.error?.message.includes("malformed JSON"), "malformed JSON message");
    await expectStatus(400, () => c.chat.completions.create({ model: MODEL, messages: user("x"), temperature: "hot" }), "temperature");
    await expectStatus(400, () => c.chat.completions.create({ model: MODEL, messages: user("x"), max_tokens: -3 }), "max_tokens");
    await expectStatus(400, () => c.chat.completions.create({ model: MODEL, messages: user("x"), frobnicate: 1 }), "unknown field");
    await expectStatus(400, () => c.chat.completions.create({ model: MODEL, messages: [] }), "at least one message");
    await expectStatus(404, () => c.chat.completions.create({ model: "gpt-9", messages: user("x") }), "does not exist");
    await expectStatus(400, () => c.chat.completions.create({ model: MODEL, messages: user("x"), max_tokens: 10_000_000 }),
                       "maximum context length");
    const part = url => [{ role: "user", content: [{ type: "image_url", image_url: { url } }] }];
    await expectStatus(400, () => c.chat.completions.create({ model: MODEL, messages: part("data:image/png;base64,@@@") }),
                       "invalid base64");
    await expectStatus(400, () => c.chat.completions.create({ model: MODEL,
      messages: part("data:image/png;base64," + Buffer.from("definitely not a png").toString("base64")) }));
    await expectStatus(400, () => c.chat.completions.create({ model: MODEL, messages: part("/etc/passwd") }),
                       "local files are not allowed");
    await expectStatus(400, () => c.chat.completions.create({ model: MODEL, messages: user("x"),
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "a+" } } } }),
      "not supported");
    r = await raw(JSON.stringify({ model: MODEL, messages: user("x".repeat(MAX_BODY + 10)) }));
    eq(r.status, 413, "huge body");
    assert(r.json?.error, "huge body has a JSON error");
    // Still serving.
    const ok = await c.chat.completions.create({ model: MODEL, messages: user("still there?"), max_tokens: 2 });
    assert(ok.choices.length === 1, "server keeps serving");
  },

  // The agent loop: every turn re-sends the whole history. The prefix cache must hand each turn the previous
  // turn's KV, so only the new tokens are computed (the re-rendered last reply may roll back a little,
  // bounded by one sliding window), visible in usage.prompt_tokens_details.cached_tokens and /metrics.
  async agentLoopPrefixCache() {
    const window = JSON.parse(readFileSync(join(work, "tiny", "config.json"), "utf8")).text_config.sliding_window;
    const messages = [{ role: "system", content: "You are a terse assistant." }];
    let previousPrompt = 0;
    for (let turn = 1; turn <= 10; turn++) {
      messages.push({ role: "user", content: `Turn ${turn}: what comes next after ${turn * 7}?` });
      const r = await client().chat.completions.create({ model: MODEL, messages, max_tokens: 6, temperature: 0 });
      const cached = r.usage.prompt_tokens_details?.cached_tokens ?? 0;
      const computed = r.usage.prompt_tokens - cached;
      if (turn > 1) {
        const newTokens = r.usage.prompt_tokens - previousPrompt;
        assert(computed <= newTokens + window,
               `turn ${turn}: computed ${computed} prompt tokens, new ${newTokens}, window ${window}`);
        assert(cached >= previousPrompt - window, `turn ${turn}: only ${cached} of ${previousPrompt} cached`);
      }
      previousPrompt = r.usage.prompt_tokens;
      messages.push({ role: "assistant", content: r.choices[0].message.content ?? "" });
    }
    assert((await metrics()).unigemma_prompt_tokens_cached_total > 0, "metrics count cached tokens");
  },

  // Agent frameworks send the whole history back, replies included, and a reply may hold the text of a soft
  // token the model generated (<|image|>, ...; a random model does). In a reply it is that literal token, never
  // a media slot: accepted beside real media, and the next turn still hits the prefix cache through it.
  async echoedPlaceholdersInReplies() {
    const window = JSON.parse(readFileSync(join(work, "tiny", "config.json"), "utf8")).text_config.sliding_window;
    const image = { type: "image_url", image_url: { url: `data:image/png;base64,${b64("gradient.png")}`, detail: "low" } };
    const messages = [
      { role: "user", content: [{ type: "text", text: "Describe" }, image] },
      { role: "assistant", content: "It shows <|image|> and <|audio|><|video|>." },
      { role: "user", content: "More?" },
    ];
    const a = await client().chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 0 });
    assert(a.usage.prompt_tokens > 70, `the image's soft tokens counted (${a.usage.prompt_tokens})`);
    messages.push({ role: "assistant", content: a.choices[0].message.content ?? "" }, { role: "user", content: "And?" });
    const b = await client().chat.completions.create({ model: MODEL, messages, max_tokens: 4, temperature: 0 });
    const cached = b.usage.prompt_tokens_details?.cached_tokens ?? 0;
    assert(cached >= a.usage.prompt_tokens - window, `only ${cached} of ${a.usage.prompt_tokens} cached`);
    await expectStatus(400, () => client().chat.completions.create({ model: MODEL, messages: user("see <|image|>") }),
                       "media placeholder");
  },

  async clientDisconnectsMidStream() {
    const controller = new AbortController();
    const stream = await client().chat.completions.create(
      { model: MODEL, messages: user("a very long story"), max_tokens: 100000, stream: true },
      { signal: controller.signal });
    let n = 0;
    try {
      for await (const _ of stream) if (++n === 3) controller.abort();
    } catch (e) { /* aborted */ }
    assert(n >= 3, "got some chunks before hanging up");
    // The sequence is cancelled: nothing keeps running.
    eq((await idleMetrics(5000)).unigemma_sequences_running, 0, "sequences running after the disconnect");
    const ok = await client().chat.completions.create({ model: MODEL, messages: user("next"), max_tokens: 2 });
    assert(ok.choices.length === 1, "server keeps serving");
  },

  // After bad input, streams dropped at every stage and non-streamed requests abandoned while waiting, the
  // server must return to idle: no live sequence holds KV; only the prefix cache may keep memory.
  async kvReturnsToIdleAfterDisconnects() {
    const before = await idleMetrics();
    eq(before.unigemma_kv_cache_sequences_bytes, 0, "idle: KV held by sequences");
    const hangUp = async (afterChunks, i) => {
      const controller = new AbortController();
      try {
        const stream = await client().chat.completions.create(
          { model: MODEL, messages: user(`drop ${i}`), max_tokens: 100000, stream: true, n: 1 + (i % 2) },
          { signal: controller.signal });
        let n = 0;
        for await (const _ of stream) if (++n >= afterChunks) controller.abort();
      } catch (e) { /* aborted */ }
    };
    const abandon = async ms => {  // a non-streamed request whose client gives up
      const controller = new AbortController();
      setTimeout(() => controller.abort(), ms);
      await client().chat.completions.create({ model: MODEL, messages: user("wait"), max_tokens: 100000 },
                                             { signal: controller.signal }).catch(() => {});
    };
    const bad = () => raw(JSON.stringify({ model: MODEL, messages: user("x"), max_tokens: 10_000_000 }));
    await Promise.all([...Array.from({ length: 8 }, (_, i) => hangUp(1 + 2 * i, i)), abandon(100), abandon(400), bad(),
                       raw("{\"model\": ")]);
    const after = await idleMetrics();
    eq([after.unigemma_sequences_running, after.unigemma_queue_depth, after.unigemma_active_streams], [0, 0, 0],
       "running, waiting, streaming once idle");
    eq(after.unigemma_kv_cache_sequences_bytes, 0, "KV held by sequences once idle");
    eq(after.unigemma_kv_cache_used_bytes, after.unigemma_prefix_cache_bytes, "KV in use = prefix cache only");
    assert(after.unigemma_prefix_cache_bytes <= after.unigemma_kv_cache_budget_bytes, "prefix cache within the budget");
  },
};

async function main() {
  await startServer();
  let failed = 0;
  for (const [name, fn] of Object.entries(tests)) {
    if (args.filter && !name.includes(args.filter)) continue;
    const t0 = Date.now();
    try {
      await fn();
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.stack ?? e}`);
    }
  }
  // SIGTERM: graceful shutdown, exit code 0.
  const exited = new Promise(r => server.on("exit", code => r(code)));
  server.kill("SIGTERM");
  const code = await Promise.race([exited, new Promise(r => setTimeout(() => r("timeout"), 20_000))]);
  if (code !== 0) { failed++; console.log(`FAIL sigterm: exit ${code}`); server.kill("SIGKILL"); }
  else console.log("ok   sigterm");
  if (failed) console.log("--- server log ---\n" + serverLog.slice(-4000));
  rmSync(work, { recursive: true, force: true });
  console.log(failed ? `${failed} FAILED` : "all passed");
  process.exit(failed ? 1 : 0);
}

main().catch(e => {
  console.error(e);
  if (server) server.kill("SIGKILL");
  process.exit(1);
});
