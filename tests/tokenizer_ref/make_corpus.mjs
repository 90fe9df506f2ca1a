// Writes tests/data/tokenizer_corpus/corpus.json: the strings whose reference ids the C++ tokenizer
// must reproduce. Deterministic (seeded PRNG), so re-running it gives the same file. Run by hand when
// the corpus should change; the committed corpus.json is what the tests and fetch_tokenizer.sh use.
//
// usage: node make_corpus.mjs OUT_FILE
import { writeFileSync } from "node:fs";

// Mulberry32: small seeded PRNG so the random cases are stable across runs and machines.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const handWritten = [
  "",
  "a",
  " ",
  "Hello",
  "Hi",
  " Hi",
  " Linus",
  " Café",
  "Hello world! Café déjà vu — 123 😊",
  "def f(x):\n\tif x  >  0:\n\t\treturn   x**2  # 🦙 llama\n\n\n    else: pass",
  "  leading, trailing  \n\n\n\n   日本語のテキスト、中文文本 and Ünïcödé ẞ ﬁ 🫩 🇺🇸 👨‍👩‍👧",
  "<table><tr><td>x</td></tr></table>",
  "<h1>Title</h1>",
  "a <b>bold</b>",
  "<bbox>1 2 3 4</bbox> <b>x</b> <code>int main()</code> </s>",
  "\r\n",
  "line one\r\nline two\r\n\r\nline four",
  "a".repeat(65),
  "literal <0x41> and <0x0a> and <0xZZ>",
  // Special and formerly-added token strings, in and out of context.
  "<|turn>",
  "<bos>",
  "<bos><bos>",
  "<eos><pad><unk><mask>",
  "[multimodal]",
  "<unused5>",
  "<unused40> <unused94> <unused6226> <unused6227>",
  "<start_of_turn>user\nhi<end_of_turn>",
  "<image_soft_token>",
  "<|turn>user\nHello<turn|>\n<|turn>model\n<|channel>thought\n<channel|>",
  "<|tool>declaration:get_time{description:<|\"|>Now<|\"|>}<tool|>",
  "<|tool_call>call:f{a:1}<tool_call|><|tool_response>response:f{value:<|\"|>ok<|\"|>}<tool_response|>",
  "<|think|>\n<|image|><|audio|><|video|><|image><image|><|audio><audio|>",
  "<|turn <turn| <|tur <|turn|> <<|turn>> <|turn><|turn>",
  "x<|turn>y <turn|> z",
  "trailing space before end <turn|>",
  // Multilingual.
  "नमस्ते दुनिया, यह एक परीक्षण है।",
  "สวัสดีชาวโลก นี่คือการทดสอบ",
  "مرحبا بالعالم، هذا اختبار.",
  "שלום עולם",
  "Привет, мир! Ёжик в тумане.",
  "Γειά σου Κόσμε",
  "안녕하세요 세계",
  "你好，世界！这是一个测试。繁體中文測試。",
  "こんにちは、世界。カタカナとひらがな。",
  "Tiếng Việt có dấu: Ngôn ngữ",
  "e\u0301 a\u0300 o\u0308 n\u0303 à á é",
  "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357",
  "ßẞ ﬁﬂ Å Å Ω Ω ½ ² ℃ ™",
  "\u00a0NBSP\u00a0in\u00a0text\u00a0",
  "\u3000ideographic\u3000space\u2003em\u2009thin\u200bzw",
  "\u2581 literal lower one eighth block \u2581\u2581\u2581",
  // Code.
  "#include <stdio.h>\nint main(void) {\n    printf(\"hello, %s!\\n\", \"world\");\n    return 0;\n}\n",
  "fn main() -> Result<(), Box<dyn Error>> {\n\tlet v: Vec<u8> = vec![0xFF; 32];\n\tOk(())\n}",
  "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
  "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
  "const f = (a, b) => a ?? b; // comment\n/* block */ let x = `template ${f(1, 2)}`;",
  "$ ls -la | grep '^d' && echo \"done\" >> /tmp/log 2>&1",
  "https://example.com/path?query=1&other=two#frag mailto:someone@example.org",
  // Emoji.
  "😀😃😄😁😆😅😂🤣",
  "👨‍👩‍👧‍👦 👩‍💻 🏳️‍🌈 🧑🏽‍🚀 ❤️‍🔥",
  "🇺🇸🇬🇧🇯🇵🇩🇪🇫🇷 flags",
  "👍🏻👍🏼👍🏽👍🏾👍🏿",
  "🦙🫩🪿🫎 rare emoji",
  "keycaps 1️⃣ #️⃣ *️⃣ ©️ ®️",
  // Control characters.
  "\x00\x01\x02\x1b[31mred\x1b[0m\x7f\x08\x0c\x0b",
  "tab\there\ttoo\t\t\tand\tmore",
  "mixed \t \n \t\n\t \n\n \t\t  ",
  // Numbers and punctuation.
  "3.14159265358979 1,234,567.89 -0.0001 1e-05 0xDEADBEEF",
  "!!!??? ... --- ___ *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
  "“smart quotes” ‘single’ « guillemets » — – … •",
];

function runs() {
  const out = [];
  for (const ch of [" ", "\n", "\t", "\r"]) {
    for (const n of [1, 2, 3, 7, 8, 15, 16, 30, 31, 32, 33, 40, 61, 62, 63, 64, 70, 93, 100, 127]) {
      out.push(ch.repeat(n));
    }
    out.push(`a${ch.repeat(33)}b${ch.repeat(31)}c${ch.repeat(62)}d`);
  }
  out.push("\n \n  \n   \n    \n");
  out.push("  \n\n  \t\t  \r\n  ".repeat(5));
  return out;
}

const POOL = [
  "a", "b", "e", "the", " ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n", "é", "ñ", "ü", "ß", "日", "本",
  "語", "中", "文", "한", "ह", "ि", "न", "्", "ท", "ี่", "ع", "ل", "ш", "ω", "😊", "🦙", "🇺🇸", "\u200d",
  "\u0301", "\u00a0", "\u2581", "<", ">", "/", "<b>", "</td>", "<|turn>", "<turn|>", "<bos>", "<eos>",
  "<unused3>", "<0x41>", "[multimodal]", "<mask>", "0", "1", "9", ".", ",", "!", "?", "'", "\"", "{", "}",
  "(", ")", "_", "-", "=", "+", "*", "#", "\\", "\x01", "\x7f", "token", "izer", "ing", "tion", "ment",
];

function randomCases(count) {
  const next = rng(20260501);
  const out = [];
  for (let i = 0; i < count; i++) {
    const len = 1 + Math.floor(next() * 40);
    let s = "";
    for (let j = 0; j < len; j++) s += POOL[Math.floor(next() * POOL.length)];
    out.push(s);
  }
  return out;
}

// ~50 KB: multilingual prose with few spaces, plus one run of ~8 KB without any space at all.
function longCase() {
  const next = rng(7);
  const words = ["Lorem", "ipsum", "dolor", "sit", "amet", "日本語", "テキスト", "中文", "नमस्ते",
    "สวัสดี", "مرحبا", "Привет", "😊", "🦙", "code()", "x=1;", "\n", "\t", "café", "naïve"];
  let s = "";
  while (s.length < 32000) {
    s += words[Math.floor(next() * words.length)];
    if (next() < 0.3) s += " ";
  }
  s += "abcdefghij".repeat(800);
  return s;
}

const corpus = [...handWritten, ...runs(), ...randomCases(400), longCase()];
const outFile = process.argv[2];
if (!outFile) {
  console.error("usage: node make_corpus.mjs OUT_FILE");
  process.exit(1);
}
writeFileSync(outFile, JSON.stringify(corpus, null, 1) + "\n");
console.log(`${corpus.length} strings, ${Buffer.byteLength(JSON.stringify(corpus))} bytes`);
