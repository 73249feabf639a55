// Times a transformers.js fill-mask pipeline in Node (benchmarks/bench_web.py runs it):
// node timing.mjs WEB_FOLDER DTYPE CALLS JSON_TEXTS -> {"load_ms", "texts": [{"median_ms", "p90_ms"}...]}
import path from "node:path";
import { env, pipeline } from "@huggingface/transformers";

const [folder, dtype, calls, texts] = process.argv.slice(2);
env.allowRemoteModels = false;
env.localModelPath = path.dirname(path.resolve(folder)) + path.sep;
let t = performance.now();
const fill = await pipeline("fill-mask", path.basename(folder), { dtype, device: "cpu" });
const load_ms = performance.now() - t;
const out = [];
for (const text of JSON.parse(texts)) {
  for (let i = 0; i < 5; i++) await fill(text, { top_k: 5 });
  const times = [];
  for (let i = 0; i < Number(calls); i++) {
    t = performance.now();
    await fill(text, { top_k: 5 });
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  out.push({ median_ms: times[Math.floor(times.length / 2)], p90_ms: times[Math.floor(times.length * 0.9)] });
}
console.log(JSON.stringify({ load_ms, texts: out }));
