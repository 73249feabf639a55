// Runs one transformers.js pipeline on a web export, in Node, and prints its answers as JSON.
// node pipeline.mjs WEB_FOLDER TASK DTYPE JSON_CALLS
//   JSON_CALLS: [[input, options], ...]; each answer on one line of the JSON list printed.
// transformers.js 4.3 has no ALBERT class for token classification: its own
// TokenClassificationPipeline runs on AutoModel (AlbertModel runs the graph and returns its
// `logits`), as docs/web.md shows users. Its text-classification pipeline takes no pairs: TASK
// "text-pair-classification" runs the tokenizer on {text, text_pair} and the model, as docs/web.md
// shows, and prints the raw logits.
import path from "node:path";
import {
  env, pipeline, AutoModel, AutoModelForSequenceClassification, AutoTokenizer, TokenClassificationPipeline,
} from "@huggingface/transformers";

const [folder, task, dtype, calls] = process.argv.slice(2);
env.allowRemoteModels = false; // everything from the loopback disk: no hub, no CDN
env.localModelPath = path.dirname(path.resolve(folder)) + path.sep;
const name = path.basename(folder);
async function pairClassifier() {
  const tokenizer = await AutoTokenizer.from_pretrained(name);
  const model = await AutoModelForSequenceClassification.from_pretrained(name, { dtype, device: "cpu" });
  return async ({ text, text_pair }) => {
    const { logits } = await model(tokenizer(text, { text_pair, truncation: true }));
    return { logits: Array.from(logits.data) };
  };
}
const run = task === "text-pair-classification" ? await pairClassifier() : task === "token-classification"
  ? new TokenClassificationPipeline({
    task,
    model: await AutoModel.from_pretrained(name, { dtype, device: "cpu" }),
    tokenizer: await AutoTokenizer.from_pretrained(name),
  })
  : await pipeline(task, name, { dtype, device: "cpu" });
const out = [];
for (const [input, options] of JSON.parse(calls)) {
  const answer = Array.isArray(input) && (task === "question-answering" || task === "zero-shot-classification")
    ? await run(input[0], input[1], options)
    : await run(input, options);
  out.push(answer.tolist ? answer.tolist() : answer);
}
console.log(JSON.stringify(out));
