// The official Extism JS SDK's side of bench/js_peer.py's rows: times one row's op in this Node
// process and prints one line of JSON.
//
//   node bench.mjs --wasm PATH --function NAME --input-size BYTES --iterations N
//                  [--repeats R] [--mode call|instance] [--config JSON] [--fresh-every K]
//                  [--warmup-seconds S]
//
// The input is the bench's text_input(BYTES) (bench/compare.py): the 60-byte sentence repeated,
// cut at BYTES. Modes, each with the SDK's defaults (no WASI, not in a worker):
//   call      N awaited calls per loop on one plugin, replaced by a new one (createPlugin from the
//             compiled module) after every K calls (0: never). The SDK keeps every block of a
//             plugin's life in one array, and a handle's top 16 bits index it as a signed i64:
//             a plugin that allocates B blocks per call fails after 32,767 / B calls (5,461 for
//             the Rust PDK's count_vowels, 4,681 for bench/plugin_sources/count_vowels_pdk.c).
//             reset() empties the array, but a plugin that keeps a var (as the PDK-like plugin
//             does) frees the var's stale handle on its next call, which grows the array back
//             to where it was: only a new plugin keeps such a plugin running.
//   instance  createPlugin from a WebAssembly.Module compiled once (bench/compare.py's
//             "CompiledPlugin") + one call + close(), N times per loop.
// Before the R timed loops, untimed loops of N for at least S seconds (default 0.5) let V8 tier the
// plugin's code and the SDK's up (a cold loop of the small call runs ~3x slower). Prints
// {"seconds": [per loop], "outputs": hex of a fresh plugin's first two outputs, "sdk", "node"}.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import createPlugin from "@extism/extism";

const { values: args } = parseArgs({
  options: {
    wasm: { type: "string" },
    function: { type: "string" },
    "input-size": { type: "string" },
    iterations: { type: "string" },
    repeats: { type: "string", default: "1" },
    mode: { type: "string", default: "call" },
    config: { type: "string", default: "{}" },
    "fresh-every": { type: "string", default: "0" },
    "warmup-seconds": { type: "string", default: "0.5" },
  },
});

function count(name, min) {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(args[name])}`);
  }
  return n;
}

const TEXT = new TextEncoder().encode("Hello, World!! The quick brown fox jumps over the lazy dog. ");

function textInput(size) {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += TEXT.length) {
    out.set(TEXT.subarray(0, Math.min(TEXT.length, size - i)), i);
  }
  return out;
}

for (const name of ["wasm", "function"]) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const fn = args.function;
const input = textInput(count("input-size", 0));
const iterations = count("iterations", 1);
const repeats = count("repeats", 1);
const freshEvery = count("fresh-every", 0);
const warmupSeconds = Number(args["warmup-seconds"]);
if (!(warmupSeconds >= 0)) {
  throw new Error(`--warmup-seconds must be a number >= 0, got ${JSON.stringify(args["warmup-seconds"])}`);
}
const options = { config: JSON.parse(args.config) };
const module = new WebAssembly.Module(readFileSync(args.wasm));
const newPlugin = () => createPlugin({ wasm: [{ module }] }, options);

let plugin = null;
let calls = 0; // on `plugin`

async function callLoop(n) {
  for (let i = 0; i < n; i++) {
    if (freshEvery && calls === freshEvery) {
      await plugin.close();
      plugin = await newPlugin();
      calls = 0;
    }
    await plugin.call(fn, input);
    calls++;
  }
}

async function instanceLoop(n) {
  for (let i = 0; i < n; i++) {
    const plugin = await newPlugin();
    await plugin.call(fn, input);
    await plugin.close();
  }
}

let loop;
if (args.mode === "call") {
  plugin = await newPlugin();
  loop = callLoop;
} else if (args.mode === "instance") {
  loop = instanceLoop;
} else {
  throw new Error(`--mode must be call or instance, got ${JSON.stringify(args.mode)}`);
}

const fresh = await newPlugin();
const outputs = [];
for (let i = 0; i < 2; i++) {
  const out = await fresh.call(fn, input);
  outputs.push(out === null ? "" : Buffer.from(out.bytes()).toString("hex"));
}
await fresh.close();

// warm-up: V8 compiles wasm with Liftoff first, then tiers hot code up (as it does the SDK's JS)
const warmupEnd = process.hrtime.bigint() + BigInt(Math.round(warmupSeconds * 1e9));
do {
  await loop(iterations);
} while (process.hrtime.bigint() < warmupEnd);
const seconds = [];
for (let r = 0; r < repeats; r++) {
  const start = process.hrtime.bigint();
  await loop(iterations);
  seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
}
if (plugin) await plugin.close();

const sdk = JSON.parse(readFileSync(new URL("node_modules/@extism/extism/package.json", import.meta.url))).version;
console.log(JSON.stringify({ seconds, outputs, sdk, node: process.versions.node }));
