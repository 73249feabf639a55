// Runs one transformers.js pipeline on a web export, in Node, and prints its answers as JSON.
// node pipeline.mjs WEB_FOLDER TASK DTYPE JSON_CALLS
//   JSON_CALLS: [[input, options], ...]; each answer on one line of the JSON list printed.
import path from "node:path";
import { env, pipeline } from "@huggingface/transformers";

const [folder, task, dtype, calls] = process.argv.slice(2);
env.allowRemoteModels = false; // everything from the loopback disk: no hub, no CDN
env.localModelPath = path.dirname(path.resolve(folder)) + path.sep;
const run = await pipeline(task, path.basename(folder), { dtype, device: "cpu" });
const out = [];
for (const [input, options] of JSON.parse(calls)) {
  const answer = Array.isArray(input) && task === "question-answering"
    ? await run(input[0], input[1], options)
    : Array.isArray(input) && task === "zero-shot-classification"
      ? await run(input[0], input[1], options)
      : await run(input, options);
  out.push(answer.tolist ? answer.tolist() : answer);
}
console.log(JSON.stringify(out));
