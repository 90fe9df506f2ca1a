// Encodes every corpus string with @lenml/tokenizers (a transformers.js port, HF-faithful for this
// tokenizer per docs tokenizer_chat.md §3.2) loaded from the Gemma 4 tokenizer.json, and writes the
// reference ids the C++ tests compare against.
//
// usage: node make_reference_ids.mjs TOKENIZER_DIR CORPUS_JSON OUT_JSON
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

const [tokDir, corpusPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node make_reference_ids.mjs TOKENIZER_DIR CORPUS_JSON OUT_JSON");
  process.exit(1);
}
const tokenizerBytes = readFileSync(join(tokDir, "tokenizer.json"));
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(tokenizerBytes.toString("utf8")),
  tokenizerConfig: JSON.parse(readFileSync(join(tokDir, "tokenizer_config.json"), "utf8")),
});
const corpusBytes = readFileSync(corpusPath);
const corpus = JSON.parse(corpusBytes.toString("utf8"));
const sha = (b) => createHash("sha256").update(b).digest("hex");
const cases = corpus.map((text) => ({
  text,
  ids: text === "" ? [] : Array.from(tokenizer.encode(text, { add_special_tokens: false })),
}));
const out = {
  generator: "@lenml/tokenizers@3.7.2",
  tokenizer_sha256: sha(tokenizerBytes),
  corpus_sha256: sha(corpusBytes),
  cases,
};
writeFileSync(outPath, JSON.stringify(out) + "\n");
console.log(`reference ids for ${cases.length} strings -> ${outPath}`);
